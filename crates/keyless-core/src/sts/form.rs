//! `application/x-www-form-urlencoded` pairs, as the AWS query protocol sends them.
//!
//! The decoding is `form_urlencoded`'s: pieces split at `&`, empty pieces skipped, the name
//! ends at the first `=`, `+` is a space, `%XX` is a byte, and invalid UTF-8 becomes U+FFFD.
//! A piece with no `+` or `%` in it needs none of that, and it is the common case by bytes:
//! the web identity token (base64url and dots) is most of an AssumeRoleWithWebIdentity body.
//! Such pieces are found with `memchr` and copied; only the others go through
//! `form_urlencoded`, so the result is the same either way.

/// The name/value pairs of a form body or query string, in order, duplicates kept.
pub fn pairs(input: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(8);
    let mut rest = input;
    while !rest.is_empty() {
        let (piece, next) = match memchr::memchr(b'&', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        if piece.is_empty() {
            continue;
        }
        match needs_no_decoding(piece) {
            Some(text) => {
                let (name, value) = text.split_once('=').unwrap_or((text, ""));
                out.push((name.to_owned(), value.to_owned()));
            }
            None => out.extend(
                form_urlencoded::parse(piece).map(|(k, v)| (k.into_owned(), v.into_owned())),
            ),
        }
    }
    out
}

/// The fuzz target's entry point (`fuzz/fuzz_targets/query.rs`): decodes `data` as a query-
/// protocol form, checks the result against `form_urlencoded` (panics if they differ), and
/// runs what follows on the request path: the parameter map, then every STS action's parameter
/// validation. Returns whether the map was accepted.
#[doc(hidden)]
pub fn fuzz_query(data: &[u8]) -> bool {
    let decoded = pairs(data);
    let reference: Vec<(String, String)> = form_urlencoded::parse(data)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    assert_eq!(
        decoded, reference,
        "form decoding differs from form_urlencoded"
    );
    let Ok(params) = super::params::Params::from_pairs(decoded) else {
        return false;
    };
    let _ = super::web_identity::parse(&params);
    let _ = super::assume_role::parse(&params);
    true
}

/// The piece as text when decoding would not change it.
fn needs_no_decoding(piece: &[u8]) -> Option<&str> {
    if memchr::memchr2(b'+', b'%', piece).is_some() {
        return None;
    }
    std::str::from_utf8(piece).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(input: &[u8]) -> Vec<(String, String)> {
        form_urlencoded::parse(input)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn plain_and_encoded_pieces_decode_like_form_urlencoded() {
        let cases: &[&[u8]] = &[
            b"",
            b"&&",
            b"Action=AssumeRoleWithWebIdentity&Version=2011-06-15",
            b"RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdeploy&RoleSessionName=a+b",
            b"WebIdentityToken=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln&x",
            b"name-only&=value-only&a==b&%zz=%4&%C3%A9=%FF",
            b"caf\xc3\xa9=ok&bad=\xff\xfe",
            b"k=v&k=w",
        ];
        for case in cases {
            assert_eq!(
                pairs(case),
                reference(case),
                "{:?}",
                String::from_utf8_lossy(case)
            );
        }
    }

    #[test]
    fn the_fuzz_entry_point_takes_a_real_body_and_hostile_ones() {
        assert!(fuzz_query(
            b"Action=AssumeRoleWithWebIdentity&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fr&RoleSessionName=s&WebIdentityToken=a.b.c"
        ));
        assert!(!fuzz_query(b"a=1&a=2"), "a parameter twice is refused");
        let many: String = (0..2000).map(|i| format!("p{i}=v&")).collect();
        assert!(
            !fuzz_query(many.as_bytes()),
            "too many parameters are refused"
        );
        assert!(fuzz_query(b"%ff%fe=%00&\xff"));
    }

    proptest! {
        #[test]
        fn any_bytes_decode_like_form_urlencoded(input in proptest::collection::vec(
            prop_oneof![
                Just(b'&'), Just(b'='), Just(b'+'), Just(b'%'), Just(b'a'), Just(b'F'),
                Just(b'3'), Just(0xC3u8), Just(0xA9u8), Just(0xFFu8), any::<u8>(),
            ],
            0..64,
        )) {
            prop_assert_eq!(pairs(&input), reference(&input));
        }
    }
}
