;; The smallest policy there is, written by hand: the core module of a
;; component that exports `kubestellar:status-policy/policy@0.1.0`, with a
;; bump `cabi_realloc`, a `decide` that answers `none` without reading its
;; request, an `aggregate` that answers `ok("")`, and post-returns that reset
;; the bump pointer. No language runtime, no allocator, no lifting.
;;
;; Its time per `decide` is what wasmtime spends on the call and on lowering
;; the request, whatever a policy does: the floor of the contract. The
;; `contract_floor` benchmark (tests/integration) measures it; the build
;; script of tests/integration turns it into a component with
;; `xtask::componentize_core`.
(module
  (memory (export "memory") 2)
  ;; Lowered arguments go from 4096 up; the return area is at 64.
  (global $bump (mut i32) (i32.const 4096))

  ;; realloc(old, old_size, align, new_size): only fresh allocations happen
  ;; when the host lowers arguments, so `old` is ignored.
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p
      (i32.and
        (i32.add (global.get $bump) (i32.sub (local.get 2) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get 2))))
    (global.set $bump (i32.add (local.get $p) (local.get 3)))
    (local.get $p))

  ;; decide(req) -> decision: `none` is case 2 of the variant.
  (func (export "kubestellar:status-policy/policy@0.1.0#decide") (param i32) (result i32)
    (i32.store8 (i32.const 64) (i32.const 2))
    (i32.const 64))
  (func (export "cabi_post_kubestellar:status-policy/policy@0.1.0#decide") (param i32)
    (global.set $bump (i32.const 4096)))

  ;; aggregate(object, reported) -> result<string, string>: ok of the empty string.
  (func (export "kubestellar:status-policy/policy@0.1.0#aggregate") (param i32) (result i32)
    (i32.store8 (i32.const 64) (i32.const 0))
    (i32.store (i32.const 68) (i32.const 0))
    (i32.store (i32.const 72) (i32.const 0))
    (i32.const 64))
  (func (export "cabi_post_kubestellar:status-policy/policy@0.1.0#aggregate") (param i32)
    (global.set $bump (i32.const 4096)))
)
