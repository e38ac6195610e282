//! How a document that differs from what the log gives is described.

use super::{column_name, text_differences};

#[test]
fn columns_are_named_as_a_spreadsheet_names_them() {
    let names: Vec<String> = [0, 1, 25, 26, 27, 51, 52, 701, 702]
        .into_iter()
        .map(column_name)
        .collect();
    assert_eq!(names, ["A", "B", "Z", "AA", "AB", "AZ", "BA", "ZZ", "AAA"]);
}

#[test]
fn differing_lines_are_named_with_the_text_around_the_first_difference() {
    let file = "<p>a</p>\n<td class=\"num\">4</td>\nsame\nsố 9\n";
    let log = "<p>a</p>\n<td class=\"num\">3</td>\nsame\nsố 8\n";
    let found = text_differences(file, log);
    assert_eq!(
        found,
        [
            "line 2: the file has «…<td class=\"num\">4</td>…», this log gives «…<td class=\"num\">3</td>…»",
            "line 4: the file has «…số 9…», this log gives «…số 8…»",
        ]
    );
    let longer = text_differences("a\nb\n", "a\n");
    assert_eq!(longer, ["the file has 2 lines, this log gives 1"]);
}
