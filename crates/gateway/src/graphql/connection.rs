//! Relay cursor connections over keyset pages: `first/after/last/before`, `first` and
//! `last` capped, cursors opaque.

use crate::error::ApiError;
use async_graphql::OutputType;
use async_graphql::connection::{Connection, Edge};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kernel::page::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use kernel::{Page, PageRequest};
use uuid::Uuid;

/// The pagination arguments of a connection field.
#[derive(Debug, Default, Clone)]
pub struct PageArgs {
    /// Rows after this cursor.
    pub after: Option<String>,
    /// Rows before this cursor.
    pub before: Option<String>,
    /// At most this many from the start.
    pub first: Option<i32>,
    /// At most this many from the end.
    pub last: Option<i32>,
}

impl PageArgs {
    /// Checks the arguments and turns them into a keyset request.
    pub fn into_request(self) -> Result<PageRequest, ApiError> {
        let size = |field: &'static str, n: i32| -> Result<u64, ApiError> {
            let n =
                u64::try_from(n).map_err(|_| ApiError::bad_input(field, "must not be negative"))?;
            if n > MAX_PAGE_SIZE {
                return Err(ApiError::bad_input(
                    field,
                    format!("must be at most {MAX_PAGE_SIZE}"),
                ));
            }
            Ok(n)
        };
        let (limit, from_end) = match (self.first, self.last) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_input(
                    "last",
                    "pass either first or last, not both",
                ));
            }
            (Some(first), None) => (size("first", first)?, false),
            (None, Some(last)) => (size("last", last)?, true),
            (None, None) => (DEFAULT_PAGE_SIZE, false),
        };
        Ok(PageRequest {
            after: self
                .after
                .as_deref()
                .map(|c| decode_cursor("after", c))
                .transpose()?,
            before: self
                .before
                .as_deref()
                .map(|c| decode_cursor("before", c))
                .transpose()?,
            limit,
            from_end,
        })
    }
}

/// The checked keyset request of a connection field's `after`, `before`, `first` and
/// `last` (what every connection resolver starts with).
pub fn page_request(
    after: Option<String>,
    before: Option<String>,
    first: Option<i32>,
    last: Option<i32>,
) -> Result<PageRequest, ApiError> {
    PageArgs {
        after,
        before,
        first,
        last,
    }
    .into_request()
}

/// The cursor of a row with this id.
pub fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

fn decode_cursor(field: &'static str, cursor: &str) -> Result<Uuid, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| Uuid::from_slice(&bytes).ok())
        .ok_or_else(|| ApiError::bad_input(field, "not a cursor issued by this API"))
}

/// The order a list is read in.
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListOrder {
    /// Oldest first; `after` a cursor means newer entries.
    #[default]
    OldestFirst,
    /// Newest first; `after` a cursor means older entries.
    NewestFirst,
}

impl From<ListOrder> for kernel::ListOrder {
    fn from(order: ListOrder) -> Self {
        match order {
            ListOrder::OldestFirst => Self::OldestFirst,
            ListOrder::NewestFirst => Self::NewestFirst,
        }
    }
}

/// Builds a connection from a page, given each node's keyset id.
pub fn connection<T, N, K: Into<Uuid>>(
    page: Page<T>,
    key: impl Fn(&T) -> K,
    node: impl Fn(T) -> N,
) -> Connection<String, N>
where
    N: OutputType,
{
    connection_with(page, key, node, async_graphql::connection::EmptyFields)
}

/// [`connection`] with fields of the list as a whole (`totalCount`).
pub fn connection_with<T, N, F, K: Into<Uuid>>(
    page: Page<T>,
    key: impl Fn(&T) -> K,
    node: impl Fn(T) -> N,
    fields: F,
) -> Connection<String, N, F>
where
    N: OutputType,
    F: async_graphql::ObjectType,
{
    let mut connection =
        Connection::with_additional_fields(page.has_previous, page.has_next, fields);
    connection.edges = page
        .items
        .into_iter()
        .map(|item| Edge::new(encode_cursor(key(&item).into()), node(item)))
        .collect();
    connection
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_arguments_are_checked_and_capped() {
        let id = Uuid::now_v7();
        let request = PageArgs {
            after: Some(encode_cursor(id)),
            first: Some(5),
            ..Default::default()
        }
        .into_request()
        .unwrap();
        assert_eq!(
            request,
            PageRequest {
                after: Some(id),
                before: None,
                limit: 5,
                from_end: false
            }
        );
        assert!(
            PageArgs {
                first: Some(101),
                ..Default::default()
            }
            .into_request()
            .is_err()
        );
        assert!(
            PageArgs {
                first: Some(-1),
                ..Default::default()
            }
            .into_request()
            .is_err()
        );
        assert!(
            PageArgs {
                first: Some(1),
                last: Some(1),
                ..Default::default()
            }
            .into_request()
            .is_err()
        );
        assert!(
            PageArgs {
                after: Some("zz".into()),
                ..Default::default()
            }
            .into_request()
            .is_err()
        );
    }
}
