//! The error of a catalogue file that cannot be read: every problem found (up to a limit), each
//! with its row and column.

use std::fmt;

/// How many problems one error lists; the others are counted.
pub(crate) const MAX_PROBLEMS: usize = 20;

/// A catalogue file that cannot be taken as it is: nothing of it should be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The bytes are not a file of the expected kind at all (not an XLSX workbook, a CSV that the
    /// reader cannot split into rows).
    #[error("{0}")]
    Unreadable(String),
    /// The file is of the right kind but some of its rows or columns are wrong.
    #[error("{}", list(problems, *omitted))]
    Problems {
        /// The first problems found, in row order (at most 20).
        problems: Vec<Problem>,
        /// How many more were found and not listed.
        omitted: usize,
    },
}

impl FileError {
    /// The problems listed (empty for an unreadable file).
    pub fn problems(&self) -> &[Problem] {
        match self {
            FileError::Unreadable(_) => &[],
            FileError::Problems { problems, .. } => problems,
        }
    }
}

/// One thing wrong in a catalogue file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The row as a spreadsheet numbers it, from 1 (the header is usually row 1).
    pub row: usize,
    /// The column's header, when the problem is in one cell.
    pub column: Option<String>,
    /// What is wrong and what to write instead.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(column) => write!(f, "row {}, column \"{column}\": {}", self.row, self.message),
            None => write!(f, "row {}: {}", self.row, self.message),
        }
    }
}

fn list(problems: &[Problem], omitted: usize) -> String {
    let mut out = match problems {
        [one] if omitted == 0 => return one.to_string(),
        _ => format!("{} problems in the catalogue file:", problems.len() + omitted),
    };
    for problem in problems {
        out.push_str("\n  ");
        out.push_str(&problem.to_string());
    }
    if omitted > 0 {
        out.push_str(&format!(
            "\n  ... and {omitted} more; fix these and read the file again to see the rest"
        ));
    }
    out
}

/// Problems as they are found, keeping the first [`MAX_PROBLEMS`].
#[derive(Debug, Default)]
pub(crate) struct Collector {
    problems: Vec<Problem>,
    omitted: usize,
}

impl Collector {
    pub(crate) fn push(&mut self, row: usize, column: Option<&str>, message: impl Into<String>) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem {
                row,
                column: column.map(str::to_owned),
                message: message.into(),
            });
        } else {
            self.omitted += 1;
        }
    }

    /// How many problems were found so far, listed or not.
    pub(crate) fn len(&self) -> usize {
        self.problems.len() + self.omitted
    }

    /// The error, if any problem was found.
    pub(crate) fn into_result(self) -> Result<(), FileError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(FileError::Problems {
                problems: self.problems,
                omitted: self.omitted,
            })
        }
    }
}
