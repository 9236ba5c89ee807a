//! Input strings no field accepts, refused in one place for every field: NUL characters
//! (PostgreSQL cannot store them in text) and strings longer than [`MAX_STRING_CHARS`].

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, Variables};
use async_graphql_value::{ConstValue, Value};
use kernel::ErrorCode;

/// The most characters any one input string may have, whatever the field (each field
/// then checks its own, shorter, bound).
pub const MAX_STRING_CHARS: usize = 256 * 1024;

/// An input string no field accepts: one holding NUL (PostgreSQL cannot store it in
/// text) or longer than [`MAX_STRING_CHARS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadString {
    /// Where: the variable or argument, then the keys and indexes inside it.
    pub field: String,
    /// What is wrong.
    pub reason: &'static str,
}

impl BadString {
    /// The error the client gets: `BAD_USER_INPUT` naming the field.
    pub fn into_server_error(self) -> ServerError {
        let mut error = crate::error::request_error(
            ErrorCode::BadUserInput,
            format!("invalid {}: {}", self.field, self.reason),
        );
        if let Some(ext) = error.extensions.as_mut() {
            ext.set("field", self.field);
        }
        error
    }
}

/// Refuses any input string, in the variables or written in the document, that holds
/// NUL or is too long: in one place for every field.
pub fn check_strings(
    document: &ExecutableDocument,
    variables: &Variables,
) -> Result<(), BadString> {
    for (name, value) in variables.iter() {
        check_const(value, &mut name.to_string())?;
    }
    for (_, operation) in document.operations.iter() {
        for definition in &operation.node.variable_definitions {
            if let Some(default) = definition.node.default_value() {
                check_const(default, &mut definition.node.name.node.to_string())?;
            }
        }
        check_selection_strings(&operation.node.selection_set.node)?;
    }
    for fragment in document.fragments.values() {
        check_selection_strings(&fragment.node.selection_set.node)?;
    }
    Ok(())
}

fn check_selection_strings(set: &SelectionSet) -> Result<(), BadString> {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                for (name, value) in &field.node.arguments {
                    check_value(&value.node, &mut name.node.to_string())?;
                }
                check_selection_strings(&field.node.selection_set.node)?;
            }
            Selection::InlineFragment(inline) => {
                check_selection_strings(&inline.node.selection_set.node)?;
            }
            Selection::FragmentSpread(_) => {}
        }
    }
    Ok(())
}

fn check_str(text: &str, path: &str) -> Result<(), BadString> {
    let reason = if text.contains('\0') {
        "must not contain NUL characters"
    } else if text.len() > MAX_STRING_CHARS && text.chars().count() > MAX_STRING_CHARS {
        "is too long"
    } else {
        return Ok(());
    };
    Err(BadString {
        field: path.to_owned(),
        reason,
    })
}

/// Walks `value`, with `path` naming where it is (extended and restored on the way).
fn check_const(value: &ConstValue, path: &mut String) -> Result<(), BadString> {
    match value {
        ConstValue::String(text) => check_str(text, path),
        ConstValue::List(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| nested(path, &i.to_string(), |p| check_const(item, p))),
        ConstValue::Object(fields) => fields.iter().try_for_each(|(key, item)| {
            check_str(key, path)?;
            nested(path, key, |p| check_const(item, p))
        }),
        _ => Ok(()),
    }
}

fn check_value(value: &Value, path: &mut String) -> Result<(), BadString> {
    match value {
        Value::String(text) => check_str(text, path),
        Value::List(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| nested(path, &i.to_string(), |p| check_value(item, p))),
        Value::Object(fields) => fields.iter().try_for_each(|(key, item)| {
            check_str(key, path)?;
            nested(path, key, |p| check_value(item, p))
        }),
        _ => Ok(()),
    }
}

fn nested(
    path: &mut String,
    key: &str,
    check: impl FnOnce(&mut String) -> Result<(), BadString>,
) -> Result<(), BadString> {
    let length = path.len();
    path.push('.');
    path.push_str(key);
    let checked = check(path);
    path.truncate(length);
    checked
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn strings_with_nul_are_named_wherever_they_are() {
        let check = |query: &str, variables: serde_json::Value| {
            let document = async_graphql::parser::parse_query(query).unwrap();
            check_strings(&document, &Variables::from_json(variables)).map_err(|e| e.field)
        };
        let nul = "a\u{0}b";
        assert_eq!(
            check(
                "mutation($i: X) { f(input: $i) }",
                serde_json::json!({ "i": { "name": nul } })
            ),
            Err("i.name".to_owned())
        );
        assert_eq!(
            check(
                "{ f(filter: {text: \"a\\u0000b\"}) }",
                serde_json::json!({})
            ),
            Err("filter.text".to_owned())
        );
        assert_eq!(
            check("{ f(list: [\"ok\", \"x\\u0000\"]) }", serde_json::json!({})),
            Err("list.1".to_owned())
        );
        assert_eq!(
            check(
                "{ f(x: \"fine\") }",
                serde_json::json!({ "v": ["fine", { "k": "v" }] })
            ),
            Ok(())
        );
    }
}
