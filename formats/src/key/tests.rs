use proptest::prelude::*;

use super::*;

fn valid_name() -> impl Strategy<Value = String> {
    // Any non-control unicode, bounded so most names stay valid; invalid ones are filtered.
    "[^\\p{Cc}]{1,80}".prop_filter("valid name", |s| validate_symbol(s).is_ok())
}

fn any_key() -> impl Strategy<Value = Key> {
    let atom_types =
        prop::sample::select(KeyType::ALL.iter().copied().filter(|t| t.class() == KeyClass::Atom).collect::<Vec<_>>());
    let ref_types =
        prop::sample::select(KeyType::ALL.iter().copied().filter(|t| t.class() == KeyClass::Ref).collect::<Vec<_>>());
    let atom = (atom_types, valid_name(), any::<(u64, i64, u64, i64, i64)>()).prop_map(
        |(t, s, (version, creation_ts, content_hash, start, end))| {
            Key::Atom(
                AtomKey::new(t, &s, AtomFields { version, creation_ts, content_hash, start, end })
                    .expect("valid by construction"),
            )
        },
    );
    let reference =
        (ref_types, valid_name()).prop_map(|(t, s)| Key::Ref(RefKey::new(t, &s).expect("valid by construction")));
    prop_oneof![atom, reference]
}

proptest! {
    #[test]
    fn binary_round_trips(key in any_key()) {
        let bytes = key.to_binary();
        prop_assert_eq!(Key::from_binary(&bytes).expect("decodes"), key.clone());
        let prefix = binary_prefix(key.key_type(), Some(key.symbol())).expect("valid");
        prop_assert!(bytes.starts_with(&prefix));
    }

    #[test]
    fn object_name_round_trips(key in any_key(), lib in valid_name()) {
        let name = key.to_object_name(&lib).expect("valid");
        let (lib2, key2) = Key::from_object_name(&name).expect("parses");
        prop_assert_eq!(lib2, lib.clone());
        prop_assert_eq!(key2, key.clone());
        let prefix = object_prefix(&lib, key.key_type(), Some(key.symbol())).expect("valid");
        let is_ref_of_prefix = format!("{name}/") == prefix;
        prop_assert!(name.starts_with(&prefix) || is_ref_of_prefix);
        prop_assert!(name.bytes().all(|b| b.is_ascii_graphic()), "printable: {}", name);
    }

    #[test]
    fn binary_decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = Key::from_binary(&bytes);
    }

    #[test]
    fn object_name_decode_never_panics(s in ".{0,80}") {
        let _ = Key::from_object_name(&s);
    }

    #[test]
    fn newer_versions_list_first(a in any::<u64>(), b in any::<u64>(), sym in valid_name()) {
        let name = |v| Key::Atom(AtomKey::new(KeyType::Version, &sym, AtomFields { version: v, ..Default::default() })
            .expect("valid")).to_object_name("lib").expect("valid");
        prop_assert_eq!(a.cmp(&b), name(b).cmp(&name(a)));
    }
}

#[test]
fn prefixes_of_similar_symbols_do_not_overlap() {
    let ab = object_prefix("lib", KeyType::TableData, Some("ab")).expect("valid");
    let abc = Key::Atom(AtomKey::new(KeyType::TableData, "abc", AtomFields::default()).expect("valid"))
        .to_object_name("lib")
        .expect("valid");
    assert!(!abc.starts_with(&ab), "{abc} must not list under {ab}");
    let vp = object_version_prefix("lib", KeyType::Version, "ab", 7).expect("valid");
    let v7 =
        Key::Atom(AtomKey::new(KeyType::Version, "ab", AtomFields { version: 7, ..Default::default() }).expect("ok"))
            .to_object_name("lib")
            .expect("valid");
    assert!(v7.starts_with(&vp));
}

#[test]
fn object_names_look_as_specified() {
    let key = Key::Atom(
        AtomKey::new(
            KeyType::TableData,
            "fx/EUR USD",
            AtomFields { version: 3, creation_ts: 1, content_hash: 0xabc, start: -1, end: 10 },
        )
        .expect("valid"),
    );
    assert_eq!(
        key.to_object_name("prod").expect("valid"),
        "prod/tdata/fx%2FEUR%20USD/18446744073709551612_8000000000000001_7fffffffffffffff_800000000000000a_0000000000000abc"
    );
    let r = Key::Ref(RefKey::new(KeyType::VersionRef, "数").expect("valid"));
    assert_eq!(r.to_object_name("prod").expect("valid"), "prod/vref/%E6%95%B0");
}

#[test]
fn non_canonical_object_names_are_refused() {
    for bad in [
        "prod/vref/%41",       // escaped unreserved byte
        "prod/vref/%e6%95%b0", // lower-case hex
        "prod/vref/a b",       // raw reserved byte
        "prod/vref/%E6",       // escapes that are not UTF-8
        "prod/vref/a/extra",   // reference with a fourth part
        "prod/ver/a",          // atom without its version part
        "prod/nope/a",         // unknown type
        "prod/ver/a/1_2_3",    // short version part
        "/vref/a",             // empty library
        "prod/vref/.",         // reserved name
    ] {
        assert!(Key::from_object_name(bad).is_err(), "{bad} should be refused");
    }
}

#[test]
fn constructors_check_the_class() {
    assert!(AtomKey::new(KeyType::VersionRef, "a", AtomFields::default()).is_err());
    assert!(RefKey::new(KeyType::TableData, "a").is_err());
    assert!(object_version_prefix("l", KeyType::VersionRef, "a", 1).is_err());
}

#[test]
fn binary_decode_rejects_trailing_bytes_and_unknown_versions() {
    let mut bytes = Key::Ref(RefKey::new(KeyType::VersionRef, "a").expect("valid")).to_binary();
    bytes.push(0);
    assert!(matches!(Key::from_binary(&bytes), Err(FormatError::Malformed { .. })));
    bytes.pop();
    bytes[0] = 9;
    assert!(matches!(Key::from_binary(&bytes), Err(FormatError::UnsupportedVersion { .. })));
}

#[test]
fn library_and_symbol_prefix_helpers_agree_with_object_names() {
    let key = Key::Ref(RefKey::new(KeyType::VersionRef, "fx/EUR USD").expect("valid"));
    let name = key.to_object_name("my lib").expect("valid");
    let lib = object_library_prefix("my lib").expect("valid");
    assert_eq!(lib, "my%20lib/");
    assert!(name.starts_with(&lib));
    assert_eq!(library_from_object_part(lib.trim_end_matches('/')).expect("canonical"), "my lib");
    for prefix in ["", "f", "fx/", "fx/EUR ", "fx/EUR USD"] {
        let p = object_symbol_prefix("my lib", KeyType::VersionRef, prefix).expect("valid");
        assert!(name.starts_with(&p), "{p:?} should prefix {name:?}");
    }
    let other = object_symbol_prefix("my lib", KeyType::VersionRef, "fx/EUR_").expect("valid");
    assert!(!name.starts_with(&other));
    assert!(library_from_object_part("my%2").is_err());
    assert!(library_from_object_part("%2E").is_err());
}
