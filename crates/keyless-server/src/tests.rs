use crate::shell_word;

#[test]
fn banner_words_read_back_as_they_are() {
    assert_eq!(shell_word("http://127.0.0.1:7707"), "http://127.0.0.1:7707");
    assert_eq!(shell_word("http://[::1]:7707"), "'http://[::1]:7707'");
    assert_eq!(shell_word("/tmp/a b/it's"), r"'/tmp/a b/it'\''s'");
    assert_eq!(shell_word(""), "''");
}
