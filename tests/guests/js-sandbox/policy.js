// A JavaScript policy that reaches for the world on request, for the sandbox
// tests: the object's name chooses `clock` (Date.now, a WASI clock, stubbed to
// trap), `entropy` (crypto.getRandomValues), `file` (QuickJS's std.open) or
// `socket` (fetch to loopback). QuickJS as componentize-qjs builds it has no
// entropy, file or network API at all: those throw a ReferenceError, which
// leaves `decide` as a trap. Any other name answers `none`.

function reach(name) {
  if (name === "clock") return Date.now();
  if (name === "entropy") return crypto.getRandomValues(new Uint8Array(8));
  // eslint-disable-next-line no-undef
  if (name === "file") return std.open("/etc/hostname", "r");
  if (name === "socket") return fetch("http://127.0.0.1:9/");
  return null;
}

function decide(req) {
  reach(req.object.name);
  return { tag: "none" };
}

function aggregate(object, reported) {
  reach(object.name);
  return "{}";
}

export const policy = { decide, aggregate };
