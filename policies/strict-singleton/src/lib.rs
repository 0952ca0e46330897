//! The `strict-singleton` routing policy: a WDS object shows the status of
//! exactly one WEC, or no status at all.
//!
//! For operators who never want an aggregated status. An aggregate is a
//! synthetic status that no WEC reported (a minimum of counters, an AND of
//! booleans), and tools that read `.status` cannot tell it from a real one; a
//! copy taken from one of several WECs is just as misleading. So where the
//! default table would aggregate, or would copy from one WEC of several, this
//! policy decides `none` and the host clears the status and its labels.
//!
//! Let W be the union of the qualified WECs of the flags that are set:
//!
//! | wantSingleton | wantMultiWEC | W          | decision                         |
//! |---------------|--------------|------------|----------------------------------|
//! | no            | no           | -          | none                             |
//! | any set       |              | \|W\| = 1  | singleton over W                 |
//! | any set       |              | \|W\| != 1 | none (never copy one of many)    |
//!
//! `aggregate` always fails: the host only calls it after a multi-WEC
//! decision, which this policy never makes, so a call means a misuse and must
//! say so rather than invent a status.

use default_policy::table::qualified;

/// What `aggregate` answers, whoever calls it.
pub const AGGREGATE_ERROR: &str = "strict-singleton never aggregates: it only copies the status \
     of exactly one WEC and decides `none` otherwise, so a multi-WEC status was not expected";

/// The policy's decision; `Some(wec)` is a singleton over that one WEC.
pub fn decide_wec(
    want_singleton: bool,
    want_multi_wec: bool,
    singleton_wecs: Vec<String>,
    multi_wec_wecs: Vec<String>,
) -> Option<String> {
    // No flag set leaves W empty, so it falls into the `none` case too.
    let mut counted = qualified(
        want_singleton,
        want_multi_wec,
        singleton_wecs,
        multi_wec_wecs,
    );
    match counted.len() {
        1 => counted.pop(),
        _ => None,
    }
}

// Only in the Wasm build: natively, a test run that also selects
// `default-policy` unifies its `component` feature on, and its exported
// `decide`/`aggregate` symbols would clash with these at link time.
#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "status-policy",
    });

    use exports::kubestellar::status_policy::policy::{
        Decision, Guest, ReportedStatus, Request, WorkloadRef,
    };

    // Small-block free lists: see `default_policy::pool`.
    #[global_allocator]
    static ALLOC: default_policy::pool::Pool = default_policy::pool::Pool::new();

    struct StrictSingleton;

    impl Guest for StrictSingleton {
        fn decide(req: Request) -> Decision {
            match crate::decide_wec(
                req.want_singleton_reported_state,
                req.want_multi_wec_reported_state,
                req.singleton_wecs,
                req.multi_wec_wecs,
            ) {
                Some(wec) => Decision::Singleton(vec![wec]),
                None => Decision::None,
            }
        }

        fn aggregate(
            _object: WorkloadRef,
            _reported: Vec<ReportedStatus>,
        ) -> Result<String, String> {
            Err(crate::AGGREGATE_ERROR.to_string())
        }
    }

    export!(StrictSingleton);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wecs(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn decide(singleton: Option<&[&str]>, multi: Option<&[&str]>) -> Option<String> {
        let list = |w: Option<&[&str]>| wecs(w.unwrap_or_default());
        decide_wec(
            singleton.is_some(),
            multi.is_some(),
            list(singleton),
            list(multi),
        )
    }

    #[test]
    fn no_flag_is_none_even_with_wecs() {
        assert_eq!(
            decide_wec(false, false, wecs(&["wec1"]), wecs(&["wec1"])),
            None
        );
    }

    #[test]
    fn one_wec_over_the_set_flags_is_a_singleton() {
        let one = Some("wec1".to_string());
        assert_eq!(decide(Some(&["wec1"]), None), one);
        assert_eq!(decide(None, Some(&["wec1"])), one);
        assert_eq!(decide(Some(&["wec1"]), Some(&["wec1"])), one);
        assert_eq!(decide(Some(&["wec1"]), Some(&[])), one);
        assert_eq!(decide(Some(&[]), Some(&["wec1"])), one);
    }

    #[test]
    fn duplicates_count_once() {
        let d = decide(Some(&["wec2", "wec2"]), Some(&["wec2"]));
        assert_eq!(d, Some("wec2".to_string()));
    }

    #[test]
    fn several_wecs_are_none_where_the_default_table_differs() {
        // The default table would copy from one of these (singleton flag alone)...
        assert_eq!(decide(Some(&["wec1", "wec2"]), None), None);
        // ... or aggregate them.
        assert_eq!(decide(None, Some(&["wec1", "wec2"])), None);
        assert_eq!(decide(Some(&["wec1"]), Some(&["wec2"])), None);
    }

    #[test]
    fn no_wec_is_none() {
        assert_eq!(decide(Some(&[]), None), None);
        assert_eq!(decide(None, Some(&[])), None);
        assert_eq!(decide(Some(&[]), Some(&[])), None);
    }

    #[test]
    fn the_flag_that_is_not_set_does_not_count_its_wecs() {
        // Only the multi-WEC list has a flag; the singleton list is ignored.
        let d = decide_wec(false, true, wecs(&["wec2"]), wecs(&["wec1"]));
        assert_eq!(d, Some("wec1".to_string()));
        let d = decide_wec(true, false, wecs(&["wec1"]), wecs(&["wec2", "wec3"]));
        assert_eq!(d, Some("wec1".to_string()));
    }

    #[test]
    fn the_aggregate_error_says_why() {
        assert!(AGGREGATE_ERROR.starts_with("strict-singleton never aggregates: "));
    }
}
