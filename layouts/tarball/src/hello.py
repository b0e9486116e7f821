"""A tiny program, packaged by layouts/tarball.yaml."""


def greet(name):
    return "hello, %s" % name


if __name__ == "__main__":
    print(greet("world"))
