/**
 * Python 2 names that Python 3 rewrites when it loads a pickle of protocol 0, 1 or 2: CPython's
 * `_compat_pickle.NAME_MAPPING` and `IMPORT_MAPPING` (identical in every 3.x since 3.6; a test
 * compares them with the installed Python). The unpickler applies them in `find_class` whenever
 * the current protocol is below 3 and `fix_imports` is on (the default), so `__builtin__.eval`
 * in an old-protocol pickle is `builtins.eval`: the scanner must judge the name that is really
 * imported, not the one written.
 */

/** (module, name) -> (module, name), checked first. */
const NAME_MAPPING: ReadonlyMap<string, readonly [string, string]> = new Map<string, readonly [string, string]>([
  ['UserDict IterableUserDict', ['collections', 'UserDict']],
  ['UserDict UserDict', ['collections', 'UserDict']],
  ['UserList UserList', ['collections', 'UserList']],
  ['UserString UserString', ['collections', 'UserString']],
  ['__builtin__ basestring', ['builtins', 'str']],
  ['__builtin__ intern', ['sys', 'intern']],
  ['__builtin__ long', ['builtins', 'int']],
  ['__builtin__ reduce', ['functools', 'reduce']],
  ['__builtin__ unichr', ['builtins', 'chr']],
  ['__builtin__ unicode', ['builtins', 'str']],
  ['__builtin__ xrange', ['builtins', 'range']],
  ['_multiprocessing Connection', ['multiprocessing.connection', 'Connection']],
  ['_socket fromfd', ['socket', 'fromfd']],
  ['exceptions ArithmeticError', ['builtins', 'ArithmeticError']],
  ['exceptions AssertionError', ['builtins', 'AssertionError']],
  ['exceptions AttributeError', ['builtins', 'AttributeError']],
  ['exceptions BaseException', ['builtins', 'BaseException']],
  ['exceptions BufferError', ['builtins', 'BufferError']],
  ['exceptions BytesWarning', ['builtins', 'BytesWarning']],
  ['exceptions DeprecationWarning', ['builtins', 'DeprecationWarning']],
  ['exceptions EOFError', ['builtins', 'EOFError']],
  ['exceptions EnvironmentError', ['builtins', 'EnvironmentError']],
  ['exceptions Exception', ['builtins', 'Exception']],
  ['exceptions FloatingPointError', ['builtins', 'FloatingPointError']],
  ['exceptions FutureWarning', ['builtins', 'FutureWarning']],
  ['exceptions GeneratorExit', ['builtins', 'GeneratorExit']],
  ['exceptions IOError', ['builtins', 'IOError']],
  ['exceptions ImportError', ['builtins', 'ImportError']],
  ['exceptions ImportWarning', ['builtins', 'ImportWarning']],
  ['exceptions IndentationError', ['builtins', 'IndentationError']],
  ['exceptions IndexError', ['builtins', 'IndexError']],
  ['exceptions KeyError', ['builtins', 'KeyError']],
  ['exceptions KeyboardInterrupt', ['builtins', 'KeyboardInterrupt']],
  ['exceptions LookupError', ['builtins', 'LookupError']],
  ['exceptions MemoryError', ['builtins', 'MemoryError']],
  ['exceptions NameError', ['builtins', 'NameError']],
  ['exceptions NotImplementedError', ['builtins', 'NotImplementedError']],
  ['exceptions OSError', ['builtins', 'OSError']],
  ['exceptions OverflowError', ['builtins', 'OverflowError']],
  ['exceptions PendingDeprecationWarning', ['builtins', 'PendingDeprecationWarning']],
  ['exceptions ReferenceError', ['builtins', 'ReferenceError']],
  ['exceptions RuntimeError', ['builtins', 'RuntimeError']],
  ['exceptions RuntimeWarning', ['builtins', 'RuntimeWarning']],
  ['exceptions StandardError', ['builtins', 'Exception']],
  ['exceptions StopIteration', ['builtins', 'StopIteration']],
  ['exceptions SyntaxError', ['builtins', 'SyntaxError']],
  ['exceptions SyntaxWarning', ['builtins', 'SyntaxWarning']],
  ['exceptions SystemError', ['builtins', 'SystemError']],
  ['exceptions SystemExit', ['builtins', 'SystemExit']],
  ['exceptions TabError', ['builtins', 'TabError']],
  ['exceptions TypeError', ['builtins', 'TypeError']],
  ['exceptions UnboundLocalError', ['builtins', 'UnboundLocalError']],
  ['exceptions UnicodeDecodeError', ['builtins', 'UnicodeDecodeError']],
  ['exceptions UnicodeEncodeError', ['builtins', 'UnicodeEncodeError']],
  ['exceptions UnicodeError', ['builtins', 'UnicodeError']],
  ['exceptions UnicodeTranslateError', ['builtins', 'UnicodeTranslateError']],
  ['exceptions UnicodeWarning', ['builtins', 'UnicodeWarning']],
  ['exceptions UserWarning', ['builtins', 'UserWarning']],
  ['exceptions ValueError', ['builtins', 'ValueError']],
  ['exceptions Warning', ['builtins', 'Warning']],
  ['exceptions ZeroDivisionError', ['builtins', 'ZeroDivisionError']],
  ['itertools ifilter', ['builtins', 'filter']],
  ['itertools ifilterfalse', ['itertools', 'filterfalse']],
  ['itertools imap', ['builtins', 'map']],
  ['itertools izip', ['builtins', 'zip']],
  ['itertools izip_longest', ['itertools', 'zip_longest']],
  ['multiprocessing AuthenticationError', ['multiprocessing.context', 'AuthenticationError']],
  ['multiprocessing BufferTooShort', ['multiprocessing.context', 'BufferTooShort']],
  ['multiprocessing ProcessError', ['multiprocessing.context', 'ProcessError']],
  ['multiprocessing TimeoutError', ['multiprocessing.context', 'TimeoutError']],
  ['multiprocessing.forking Popen', ['multiprocessing.popen_fork', 'Popen']],
  ['multiprocessing.process Process', ['multiprocessing.context', 'Process']],
  ['socket _socketobject', ['socket', 'SocketType']],
  ['urllib ContentTooShortError', ['urllib.error', 'ContentTooShortError']],
  ['urllib getproxies', ['urllib.request', 'getproxies']],
  ['urllib pathname2url', ['urllib.request', 'pathname2url']],
  ['urllib quote', ['urllib.parse', 'quote']],
  ['urllib quote_plus', ['urllib.parse', 'quote_plus']],
  ['urllib unquote', ['urllib.parse', 'unquote']],
  ['urllib unquote_plus', ['urllib.parse', 'unquote_plus']],
  ['urllib url2pathname', ['urllib.request', 'url2pathname']],
  ['urllib urlcleanup', ['urllib.request', 'urlcleanup']],
  ['urllib urlencode', ['urllib.parse', 'urlencode']],
  ['urllib urlopen', ['urllib.request', 'urlopen']],
  ['urllib urlretrieve', ['urllib.request', 'urlretrieve']],
  ['urllib2 HTTPError', ['urllib.error', 'HTTPError']],
  ['urllib2 URLError', ['urllib.error', 'URLError']],
  ['whichdb whichdb', ['dbm', 'whichdb']],
]);

/** module -> module, used when the (module, name) pair has no entry above. */
const IMPORT_MAPPING: ReadonlyMap<string, string> = new Map<string, string>([
  ['BaseHTTPServer', 'http.server'],
  ['CGIHTTPServer', 'http.server'],
  ['ConfigParser', 'configparser'],
  ['Cookie', 'http.cookies'],
  ['Dialog', 'tkinter.dialog'],
  ['DocXMLRPCServer', 'xmlrpc.server'],
  ['FileDialog', 'tkinter.filedialog'],
  ['HTMLParser', 'html.parser'],
  ['Queue', 'queue'],
  ['ScrolledText', 'tkinter.scrolledtext'],
  ['SimpleDialog', 'tkinter.simpledialog'],
  ['SimpleHTTPServer', 'http.server'],
  ['SimpleXMLRPCServer', 'xmlrpc.server'],
  ['SocketServer', 'socketserver'],
  ['StringIO', 'io'],
  ['Tix', 'tkinter.tix'],
  ['Tkconstants', 'tkinter.constants'],
  ['Tkdnd', 'tkinter.dnd'],
  ['Tkinter', 'tkinter'],
  ['UserDict', 'collections'],
  ['UserList', 'collections'],
  ['UserString', 'collections'],
  ['__builtin__', 'builtins'],
  ['_abcoll', 'collections.abc'],
  ['_elementtree', 'xml.etree.ElementTree'],
  ['_winreg', 'winreg'],
  ['anydbm', 'dbm'],
  ['cPickle', 'pickle'],
  ['cStringIO', 'io'],
  ['commands', 'subprocess'],
  ['cookielib', 'http.cookiejar'],
  ['copy_reg', 'copyreg'],
  ['dbhash', 'dbm.bsd'],
  ['dbm', 'dbm.ndbm'],
  ['dumbdbm', 'dbm.dumb'],
  ['dummy_thread', '_dummy_thread'],
  ['gdbm', 'dbm.gnu'],
  ['htmlentitydefs', 'html.entities'],
  ['httplib', 'http.client'],
  ['markupbase', '_markupbase'],
  ['repr', 'reprlib'],
  ['robotparser', 'urllib.robotparser'],
  ['test.test_support', 'test.support'],
  ['thread', '_thread'],
  ['tkColorChooser', 'tkinter.colorchooser'],
  ['tkCommonDialog', 'tkinter.commondialog'],
  ['tkFileDialog', 'tkinter.filedialog'],
  ['tkFont', 'tkinter.font'],
  ['tkMessageBox', 'tkinter.messagebox'],
  ['tkSimpleDialog', 'tkinter.simpledialog'],
  ['ttk', 'tkinter.ttk'],
  ['urllib2', 'urllib.request'],
  ['urlparse', 'urllib.parse'],
  ['whichdb', 'dbm'],
  ['xmlrpclib', 'xmlrpc.client'],
]);

/** The protocol below which the unpickler rewrites Python 2 names. */
const FIX_IMPORTS_BELOW_PROTOCOL = 3;

/**
 * The (module, name) that `Unpickler.find_class` imports for a GLOBAL, STACK_GLOBAL or INST
 * read while the stream's protocol is `protocol`, following CPython's order: the pair
 * mapping first, else the module mapping. Never throws.
 */
export function importedName(module: string, name: string, protocol: number): readonly [string, string] {
  if (protocol >= FIX_IMPORTS_BELOW_PROTOCOL) return [module, name];
  // Every key holds exactly one space, so only the split at that space can match it, whatever
  // spaces an attacker puts into `module` or `name`.
  const pair = NAME_MAPPING.get(`${module} ${name}`);
  if (pair !== undefined) return pair;
  return [IMPORT_MAPPING.get(module) ?? module, name];
}

/** The two tables as plain data, for the test that compares them with the installed Python. */
export function compatTables(): { names: [string, string, string, string][]; modules: [string, string][] } {
  return {
    names: [...NAME_MAPPING].map(([key, [m, n]]) => {
      const [from, fromName] = key.split(' ') as [string, string];
      return [from, fromName, m, n];
    }),
    modules: [...IMPORT_MAPPING],
  };
}
