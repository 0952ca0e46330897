"""A Python policy that reaches for the world on request, for the sandbox
tests: the object's name chooses `clock` (time.time), `file` (open),
`entropy` (os.urandom) or `socket` (a TCP connection to loopback); any other
name answers `none`. Built with --stub-wasi, each of them must trap.
"""

import os
import socket
import time

from wit_world import exports
from wit_world.exports.policy import Decision_None_


def reach(name):
    if name == "clock":
        return time.time()
    if name == "file":
        with open("/etc/hostname") as f:
            return f.read()
    if name == "entropy":
        return os.urandom(8)
    if name == "socket":
        return socket.create_connection(("127.0.0.1", 9), timeout=1)
    return None


class Policy(exports.Policy):
    def decide(self, req):
        reach(req.object.name)
        return Decision_None_()

    def aggregate(self, object, reported):
        reach(object.name)
        return "{}"
