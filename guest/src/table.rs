//! KubeStellar's routing table, from the design note that split
//! `syncWorkloadObject` into `handleSingletonState` and `handleMultiWECState`.
//!
//! | singleton | multi-WEC | WECs counted | decision                                  |
//! |-----------|-----------|--------------|-------------------------------------------|
//! | yes       | yes       | U = S ∪ M    | \|U\| = 1: singleton, else multi-WEC        |
//! | yes       | no        | S            | singleton over S, whatever its size       |
//! | no        | yes       | M            | \|M\| = 1: singleton, else multi-WEC        |
//! | no        | no        | -            | none                                      |
//!
//! The WEC lists are treated as sets even if a caller sends duplicates, and the
//! decision lists its WECs sorted.

/// The handler the table chooses, with the WECs it runs over (sorted, no duplicates).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Singleton(Vec<String>),
    MultiWec(Vec<String>),
    None,
}

/// Applies the table to the OR-ed flags and the qualified WECs of each flag.
///
/// The lists are taken by value: a policy owns the request it was given, and
/// sorting its lists in place costs no allocation, which matters on a path
/// the controller runs for every reconcile.
pub fn route(
    want_singleton: bool,
    want_multi_wec: bool,
    singleton_wecs: Vec<String>,
    multi_wec_wecs: Vec<String>,
) -> Route {
    let wecs = qualified(
        want_singleton,
        want_multi_wec,
        singleton_wecs,
        multi_wec_wecs,
    );
    match (want_singleton, want_multi_wec) {
        (true, false) => Route::Singleton(wecs),
        (_, true) => singleton_if_one(wecs),
        (false, false) => Route::None,
    }
}

/// One WEC is a singleton whatever the flags asked for; more (or none) is multi-WEC.
pub fn singleton_if_one(wecs: Vec<String>) -> Route {
    if wecs.len() == 1 {
        Route::Singleton(wecs)
    } else {
        Route::MultiWec(wecs)
    }
}

/// The WECs of a list as a set: sorted, without duplicates.
pub fn as_set(mut wecs: Vec<String>) -> Vec<String> {
    wecs.sort_unstable();
    wecs.dedup();
    wecs
}

/// The union of the qualified WECs of the flags that are set, as a set:
/// destinations of a flag that is not set do not qualify.
pub fn qualified(
    want_singleton: bool,
    want_multi_wec: bool,
    singleton_wecs: Vec<String>,
    multi_wec_wecs: Vec<String>,
) -> Vec<String> {
    match (want_singleton, want_multi_wec) {
        (true, true) => union(singleton_wecs, multi_wec_wecs),
        (true, false) => as_set(singleton_wecs),
        (false, true) => as_set(multi_wec_wecs),
        (false, false) => Vec::new(),
    }
}

/// The union of two WEC lists, as a set.
pub fn union(mut a: Vec<String>, b: Vec<String>) -> Vec<String> {
    a.extend(b);
    as_set(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(singleton: Option<&[&str]>, multi: Option<&[&str]>) -> Route {
        let list = |w: Option<&[&str]>| wecs(w.unwrap_or_default());
        route(
            singleton.is_some(),
            multi.is_some(),
            list(singleton),
            list(multi),
        )
    }

    fn wecs(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn both_flags_one_wec_in_the_union_is_singleton() {
        let d = decide(Some(&["wec1"]), Some(&["wec1", "wec1"]));
        assert_eq!(d, Route::Singleton(wecs(&["wec1"])));
    }

    #[test]
    fn both_flags_several_wecs_is_multi_wec_over_the_union() {
        let d = decide(Some(&["wec2"]), Some(&["wec1"]));
        assert_eq!(d, Route::MultiWec(wecs(&["wec1", "wec2"])));
    }

    #[test]
    fn both_flags_no_wec_is_multi_wec_over_nothing() {
        assert_eq!(decide(Some(&[]), Some(&[])), Route::MultiWec(vec![]));
    }

    #[test]
    fn singleton_flag_alone_is_singleton_whatever_the_size() {
        let d = decide(Some(&["wec2", "wec1", "wec2"]), None);
        assert_eq!(d, Route::Singleton(wecs(&["wec1", "wec2"])));
        assert_eq!(decide(Some(&[]), None), Route::Singleton(vec![]));
    }

    #[test]
    fn multi_wec_flag_alone_depends_on_the_count() {
        let one = decide(None, Some(&["wec1", "wec1"]));
        assert_eq!(one, Route::Singleton(wecs(&["wec1"])));
        let two = decide(None, Some(&["wec3", "wec1"]));
        assert_eq!(two, Route::MultiWec(wecs(&["wec1", "wec3"])));
    }

    #[test]
    fn no_flag_is_none_even_with_wecs() {
        assert_eq!(
            route(false, false, wecs(&["wec1"]), wecs(&["wec2"])),
            Route::None
        );
    }
}
