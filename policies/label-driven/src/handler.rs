//! Choosing the handler from the object's `status-router.kubestellar.io/handler`
//! label or annotation.
//!
//! The annotation wins when both are set: labels are often stamped by
//! templates and selectors for many objects at once, while an annotation is
//! the usual place for a per-object override. It wins even when its value is
//! unknown (then the object gets `auto`), so that what the object says on its
//! most specific key is what happens.
//!
//! An unknown value (a typo, another case such as `Singleton`, an empty
//! string) behaves as `auto` rather than `none`: a typo must not silently
//! remove a status that the default table would have written.

use default_policy::table::{self, Route};

use crate::lookup;

/// The label or annotation key that chooses the handler.
pub const HANDLER_KEY: &str = "status-router.kubestellar.io/handler";

/// What the object asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handler {
    /// `singleton`: copy the status, even when the Bindings ask for an aggregate.
    Singleton,
    /// `multi-wec`: aggregate, even over a single WEC.
    MultiWec,
    /// `none`: no status at all (the object opts out).
    OptOut,
    /// `auto`, absent or unknown: KubeStellar's table, as the default policy.
    Auto,
}

impl Handler {
    /// Parses a value of the key; anything unknown is [`Handler::Auto`].
    pub fn parse(value: Option<&str>) -> Handler {
        match value {
            Some("singleton") => Handler::Singleton,
            Some("multi-wec") => Handler::MultiWec,
            Some("none") => Handler::OptOut,
            _ => Handler::Auto,
        }
    }

    /// The handler an object asks for with its labels and annotations.
    pub fn of(labels: &[(String, String)], annotations: &[(String, String)]) -> Handler {
        Handler::parse(lookup(annotations, HANDLER_KEY).or_else(|| lookup(labels, HANDLER_KEY)))
    }
}

/// The decision for an object that asks for `handler`.
///
/// With no flag set the decision is `none` whatever the object asks: a policy
/// cannot opt an object into status that no Binding asked for. Otherwise the
/// forced handlers run over U, the union of the qualified WECs of the flags
/// that are set (destinations of a flag that is not set do not qualify).
pub fn route(
    handler: Handler,
    want_singleton: bool,
    want_multi_wec: bool,
    singleton_wecs: Vec<String>,
    multi_wec_wecs: Vec<String>,
) -> Route {
    if !want_singleton && !want_multi_wec {
        return Route::None;
    }
    match handler {
        Handler::Auto => table::route(
            want_singleton,
            want_multi_wec,
            singleton_wecs,
            multi_wec_wecs,
        ),
        Handler::OptOut => Route::None,
        // With U of other than one WEC the host clears, as KubeStellar does.
        Handler::Singleton | Handler::MultiWec => {
            let wecs = table::qualified(
                want_singleton,
                want_multi_wec,
                singleton_wecs,
                multi_wec_wecs,
            );
            if handler == Handler::Singleton {
                Route::Singleton(wecs)
            } else {
                Route::MultiWec(wecs)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wecs(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn pairs(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn decide(handler: Handler, singleton: Option<&[&str]>, multi: Option<&[&str]>) -> Route {
        let list = |w: Option<&[&str]>| wecs(w.unwrap_or_default());
        route(
            handler,
            singleton.is_some(),
            multi.is_some(),
            list(singleton),
            list(multi),
        )
    }

    #[test]
    fn values_parse_exactly_and_unknown_is_auto() {
        assert_eq!(Handler::parse(Some("singleton")), Handler::Singleton);
        assert_eq!(Handler::parse(Some("multi-wec")), Handler::MultiWec);
        assert_eq!(Handler::parse(Some("none")), Handler::OptOut);
        assert_eq!(Handler::parse(Some("auto")), Handler::Auto);
        assert_eq!(Handler::parse(None), Handler::Auto);
        for unknown in ["Singleton", "multiwec", "", " none"] {
            assert_eq!(Handler::parse(Some(unknown)), Handler::Auto, "{unknown:?}");
        }
    }

    #[test]
    fn the_annotation_wins_over_the_label() {
        let label = pairs(&[(HANDLER_KEY, "none")]);
        let annotation = pairs(&[(HANDLER_KEY, "multi-wec")]);
        assert_eq!(Handler::of(&label, &[]), Handler::OptOut);
        assert_eq!(Handler::of(&[], &annotation), Handler::MultiWec);
        assert_eq!(Handler::of(&label, &annotation), Handler::MultiWec);
        // Even an unknown annotation: the object gets `auto`, not the label's choice.
        let typo = pairs(&[(HANDLER_KEY, "nope")]);
        assert_eq!(Handler::of(&label, &typo), Handler::Auto);
        let other = pairs(&[("handler", "none")]);
        assert_eq!(Handler::of(&other, &other), Handler::Auto);
    }

    #[test]
    fn no_flag_is_none_whatever_the_object_asks() {
        for h in [
            Handler::Singleton,
            Handler::MultiWec,
            Handler::OptOut,
            Handler::Auto,
        ] {
            let d = route(h, false, false, wecs(&["wec1"]), wecs(&["wec2"]));
            assert_eq!(d, Route::None, "{h:?}");
        }
    }

    #[test]
    fn singleton_runs_over_the_union_whatever_its_size() {
        let d = decide(Handler::Singleton, None, Some(&["wec2", "wec1", "wec2"]));
        assert_eq!(d, Route::Singleton(wecs(&["wec1", "wec2"])));
        let d = decide(Handler::Singleton, Some(&["wec1"]), Some(&["wec1"]));
        assert_eq!(d, Route::Singleton(wecs(&["wec1"])));
        assert_eq!(
            decide(Handler::Singleton, Some(&[]), None),
            Route::Singleton(vec![])
        );
    }

    #[test]
    fn multi_wec_aggregates_even_one_wec() {
        let d = decide(Handler::MultiWec, Some(&["wec1"]), None);
        assert_eq!(d, Route::MultiWec(wecs(&["wec1"])));
        let d = decide(Handler::MultiWec, Some(&["wec3"]), Some(&["wec1", "wec3"]));
        assert_eq!(d, Route::MultiWec(wecs(&["wec1", "wec3"])));
    }

    #[test]
    fn opt_out_is_none_even_with_flags() {
        assert_eq!(
            decide(Handler::OptOut, Some(&["wec1"]), Some(&["wec2"])),
            Route::None
        );
    }

    #[test]
    fn auto_is_the_default_table() {
        // (singleton WECs, multi-WEC WECs); `None`: that flag is not set.
        type Flags<'a> = (Option<&'a [&'a str]>, Option<&'a [&'a str]>);
        let cases: [Flags; 5] = [
            (Some(&["wec1", "wec2"]), None),
            (None, Some(&["wec1"])),
            (None, Some(&["wec1", "wec2"])),
            (Some(&["wec1"]), Some(&["wec1"])),
            (Some(&[]), Some(&[])),
        ];
        for (s, m) in cases {
            let list = |w: Option<&[&str]>| wecs(w.unwrap_or_default());
            let want = table::route(s.is_some(), m.is_some(), list(s), list(m));
            assert_eq!(decide(Handler::Auto, s, m), want, "{s:?} {m:?}");
        }
    }

    #[test]
    fn wecs_of_a_flag_that_is_not_set_do_not_count() {
        let d = route(
            Handler::MultiWec,
            true,
            false,
            wecs(&["wec1"]),
            wecs(&["wec2"]),
        );
        assert_eq!(d, Route::MultiWec(wecs(&["wec1"])));
        let d = route(
            Handler::Singleton,
            false,
            true,
            wecs(&["wec1"]),
            wecs(&["wec2"]),
        );
        assert_eq!(d, Route::Singleton(wecs(&["wec2"])));
    }
}
