/**
 * Which imports a pickle may make. Unpickling runs code only through objects it imports
 * (GLOBAL, STACK_GLOBAL, INST, EXT*): REDUCE, NEWOBJ, NEWOBJ_EX, OBJ and INST call them, BUILD
 * calls their `__setstate__`. So a pickle is exactly as dangerous as the callables it imports,
 * and the decision rests on the import names alone.
 */

/**
 * The default allow-list: plain containers only, each safe to call with any arguments built
 * from the other allowed objects. A model that is plain dicts, lists, strs, ints and floats
 * (train.py's) needs none of them at protocol 2 and above; they are here because protocols
 * 0 to 3 write sets, frozensets and complex numbers, and every protocol writes OrderedDict, as
 * calls.
 *
 * Left out on purpose, although common in harmless pickles (add them with `allow` when a
 * pickle needs them):
 * - `builtins.bytearray`, `builtins.bytes`: called with an int they allocate that many bytes,
 *   so ten bytes of pickle can ask for gigabytes.
 * - `_codecs.encode` (how protocols 0-2 write bytes): the codec name picks the code that runs,
 *   and looking a codec up imports `encodings.<name>` modules; one import stands for a family
 *   of functions.
 * - `copyreg._reconstructor`, `copyreg.__newobj__`: harmless themselves, but only useful
 *   together with a class import that decides everything; allow that class, and these, only
 *   when a pickle needs them.
 * - `builtins.getattr`, `builtins.eval`, `builtins.exec`, `builtins.__import__` and the
 *   like: never allowed, see {@link NEVER_ALLOWED}.
 */
export const DEFAULT_PICKLE_ALLOW: ReadonlySet<string> = new Set([
  // Build a container from an iterable or mapping of already-built values; they call nothing
  // on those values but __hash__/__eq__ of allowed types. BUILD on them fails (no __dict__).
  'builtins.dict',
  'builtins.list',
  'builtins.tuple',
  'builtins.set',
  'builtins.frozenset',
  // Parses a numeric string or combines two numbers; bounded work.
  'builtins.complex',
  // A dict subclass implemented in C. BUILD can set entries of its __dict__ or attributes, but
  // nothing calls them while loading, and its type (static) refuses __class__ assignment.
  'collections.OrderedDict',
]);

/**
 * Imports that are refused even when an allow-list names them: each runs commands or code,
 * reaches arbitrary attributes or modules, or opens files or sockets. A module entry covers
 * its submodules (`os` covers `os.path`). A defence in depth against a careless `--allow`.
 */
export const NEVER_ALLOWED: ReadonlyMap<string, string> = new Map([
  // Commands and processes.
  ['os', 'runs commands and touches files'],
  ['posix', 'runs commands and touches files'], // os.system pickles as posix.system on Unix
  ['nt', 'runs commands and touches files'], // ... and as nt.system on Windows
  ['subprocess', 'runs commands'],
  ['_posixsubprocess', 'runs commands'],
  ['pty', 'runs commands'],
  ['multiprocessing', 'starts processes'],
  ['asyncio', 'starts processes and opens sockets'],
  ['webbrowser', 'runs commands'],
  // Code execution and arbitrary attribute or module access.
  ['builtins.eval', 'runs code'],
  ['builtins.exec', 'runs code'],
  ['builtins.compile', 'builds code'],
  ['builtins.__import__', 'imports any module'],
  ['builtins.getattr', 'reaches any attribute'],
  ['builtins.setattr', 'changes any attribute'],
  ['builtins.delattr', 'changes any attribute'],
  ['builtins.globals', 'reaches interpreter state'],
  ['builtins.locals', 'reaches interpreter state'],
  ['builtins.vars', 'reaches interpreter state'],
  ['builtins.open', 'opens files'],
  ['builtins.input', 'reads the terminal'],
  ['builtins.breakpoint', 'starts a debugger'],
  ['importlib', 'imports any module'],
  ['runpy', 'runs code'],
  ['code', 'runs code'],
  ['codeop', 'builds code'],
  ['types', 'builds functions and code objects'],
  ['operator', 'reaches any attribute (attrgetter, methodcaller)'],
  ['ctypes', 'calls native code'],
  ['marshal', 'loads code objects'],
  ['pickle', 'unpickles a nested, unscanned payload'],
  ['_pickle', 'unpickles a nested, unscanned payload'],
  ['pdb', 'runs code'],
  ['timeit', 'runs code'],
  ['trace', 'runs code'],
  ['profile', 'runs code'],
  ['cProfile', 'runs code'],
  ['sys', 'reaches interpreter state'],
  // Files and the network.
  ['shutil', 'touches files'],
  ['io', 'opens files'],
  ['socket', 'opens sockets'],
]);

/** The verdict on one import. */
export type ImportVerdict =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly reason: string };

/**
 * Judges the import `module.name` (after Python 2 names were mapped) against `allow`. The
 * allow-list matches whole dotted names exactly: `builtins.dict` does not allow
 * `builtins.dict.fromkeys` (an attribute path, which protocol 4 can import).
 */
export function judgeImport(fullName: string, allow: ReadonlySet<string>): ImportVerdict {
  const never = neverAllowedReason(fullName);
  if (never !== undefined) {
    return { allowed: false, reason: `imports ${fullName}, which ${never} and is never allowed` };
  }
  if (allow.has(fullName)) return { allowed: true };
  return { allowed: false, reason: `imports ${fullName}, which is not in the allow-list` };
}

function neverAllowedReason(fullName: string): string | undefined {
  // Check every dotted prefix, so that `os.path.join` is caught by `os`.
  let end = fullName.indexOf('.');
  while (end !== -1) {
    const reason = NEVER_ALLOWED.get(fullName.slice(0, end));
    if (reason !== undefined) return reason;
    end = fullName.indexOf('.', end + 1);
  }
  return NEVER_ALLOWED.get(fullName);
}
