//! Keyset page requests. Records are ordered by their UUIDv7 id, which is unique and
//! time-ordered, so a cursor is just the last id seen and a page never skips or repeats
//! rows when others are inserted meanwhile.

use uuid::Uuid;

/// The most rows one page may hold, whatever the client asks for.
pub const MAX_PAGE_SIZE: u64 = 100;
/// The page size when the client does not say.
pub const DEFAULT_PAGE_SIZE: u64 = 20;

/// Which slice of an id-ordered list to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageRequest {
    /// Only rows with an id greater than this.
    pub after: Option<Uuid>,
    /// Only rows with an id smaller than this.
    pub before: Option<Uuid>,
    /// How many rows at most.
    pub limit: u64,
    /// Take the rows closest to `before` (the `last` of Relay) rather than to `after`.
    pub from_end: bool,
}

impl PageRequest {
    /// The first page of the default size.
    pub const fn first_page() -> Self {
        Self {
            after: None,
            before: None,
            limit: DEFAULT_PAGE_SIZE,
            from_end: false,
        }
    }
}

/// One page of rows in ascending id order, with whether more exist on either side.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The rows, ascending by id.
    pub items: Vec<T>,
    /// More rows exist before the first one (only known when reading from the end).
    pub has_previous: bool,
    /// More rows exist after the last one (only known when reading from the start).
    pub has_next: bool,
}

impl<T> Page<T> {
    /// Builds a page from rows fetched with `limit + 1` in the request's direction: the
    /// extra row only tells whether there is more.
    pub fn from_overfetch(mut rows: Vec<T>, request: &PageRequest) -> Self {
        let limit = usize::try_from(request.limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        if request.from_end {
            rows.reverse();
        }
        Self {
            items: rows,
            has_previous: request.from_end && more,
            has_next: !request.from_end && more,
        }
    }

    /// Maps the rows with a fallible conversion, keeping the page's shape.
    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Page<U>, E> {
        Ok(Page {
            items: self.items.into_iter().map(f).collect::<Result<_, _>>()?,
            has_previous: self.has_previous,
            has_next: self.has_next,
        })
    }

    /// Maps the rows, keeping the page's shape.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            has_previous: self.has_previous,
            has_next: self.has_next,
        }
    }
}

/// Applies a keyset page request to a query ordered by `id_column`: the bounds, the
/// direction and one row more than the limit (see [`Page::from_overfetch`]).
pub fn keyset<E>(
    select: sea_orm::Select<E>,
    id_column: E::Column,
    request: &PageRequest,
) -> sea_orm::Select<E>
where
    E: sea_orm::EntityTrait,
{
    keyset_in(select, id_column, request, ListOrder::OldestFirst)
}

/// The order a list is read in, by its time-ordered ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListOrder {
    /// Oldest first; `after` a cursor means newer rows.
    #[default]
    OldestFirst,
    /// Newest first; `after` a cursor means older rows.
    NewestFirst,
}

/// [`keyset`] in the order the reader asked for.
pub fn keyset_in<E>(
    select: sea_orm::Select<E>,
    id_column: E::Column,
    request: &PageRequest,
    order: ListOrder,
) -> sea_orm::Select<E>
where
    E: sea_orm::EntityTrait,
{
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
    let newest_first = order == ListOrder::NewestFirst;
    let mut select = select;
    if let Some(after) = request.after {
        select = select.filter(if newest_first {
            id_column.lt(after)
        } else {
            id_column.gt(after)
        });
    }
    if let Some(before) = request.before {
        select = select.filter(if newest_first {
            id_column.gt(before)
        } else {
            id_column.lt(before)
        });
    }
    // Reading from the end reverses the list's order.
    let select = if request.from_end != newest_first {
        select.order_by_desc(id_column)
    } else {
        select.order_by_asc(id_column)
    };
    select.limit(request.limit.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overfetch_tells_whether_more_rows_exist_in_the_reading_direction() {
        let forward = PageRequest {
            limit: 2,
            ..PageRequest::first_page()
        };
        let page = Page::from_overfetch(vec![1, 2, 3], &forward);
        assert_eq!(page.items, vec![1, 2]);
        assert!(page.has_next && !page.has_previous);

        let backward = PageRequest {
            limit: 2,
            from_end: true,
            ..PageRequest::first_page()
        };
        let page = Page::from_overfetch(vec![9, 8, 7], &backward);
        assert_eq!(page.items, vec![8, 9]);
        assert!(page.has_previous && !page.has_next);

        let page = Page::from_overfetch(vec![9], &backward);
        assert_eq!(page.items, vec![9]);
        assert!(!page.has_previous);
    }
}
