//! Finding a record by a prefix of its id, as users type ids: trimmed, in any
//! case, and as short as is still unique.

/// What a prefix matched.
#[derive(Debug, PartialEq, Eq)]
pub enum Match<T> {
    None,
    One(T),
    Several,
}

/// The id as typed, trimmed and lowercase (ids are lowercase hex).
pub fn normalize(text: &str) -> String {
    text.trim().to_ascii_lowercase()
}

/// The one item of `items` whose id (`id`) starts with `prefix`, if exactly one does.
pub fn find<T, K: AsRef<str>>(
    items: impl IntoIterator<Item = T>,
    prefix: &str,
    id: impl Fn(&T) -> K,
) -> Match<T> {
    let mut matches = items.into_iter().filter(|item| id(item).as_ref().starts_with(prefix));
    match (matches.next(), matches.next()) {
        (Some(item), None) => Match::One(item),
        (Some(_), Some(_)) => Match::Several,
        (None, _) => Match::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_several_or_none() {
        let ids = ["abc1", "abc2", "bcd3"];
        assert_eq!(find(ids, "abc1", |s| *s), Match::One("abc1"));
        assert_eq!(find(ids, "b", |s| *s), Match::One("bcd3"));
        assert_eq!(find(ids, "abc", |s| *s), Match::Several);
        assert_eq!(find(ids, "ff", |s| *s), Match::None);
        assert_eq!(normalize("  ABC1\n"), "abc1");
    }
}
