//! Parsed documents, kept. Clients send the same few documents over and over, and for a
//! small one parsing is the costliest step of its admission (about a seventh of the
//! server's time for a node read, by profile): a document is parsed once per process and
//! its parse reused while it stays in the cache. Keyed by the whole text, so no hash
//! collision can hand one document's parse to another; bounded by an estimate of the
//! memory the parses take, so a stream of distinct documents only evicts.

use async_graphql::parser::types::ExecutableDocument;

/// How much more memory a parse takes than its text, roughly (measured on our own
/// documents: positions, names and nodes for every token).
const PARSE_BYTES_PER_TEXT_BYTE: u64 = 16;
/// The memory the kept parses may take, as estimated.
const CAPACITY_BYTES: u64 = 32 * 1024 * 1024;
/// Documents expected in the cache (sizes its tables).
const EXPECTED_DOCUMENTS: usize = 1_024;

/// Weighs a kept parse by its estimated memory.
#[derive(Clone)]
struct EstimatedBytes;

impl quick_cache::Weighter<String, ExecutableDocument> for EstimatedBytes {
    fn weight(&self, text: &String, _: &ExecutableDocument) -> u64 {
        (text.len() as u64 + 1) * (PARSE_BYTES_PER_TEXT_BYTE + 1)
    }
}

/// The process's parsed documents (shared by every request).
pub struct ParsedDocuments(quick_cache::sync::Cache<String, ExecutableDocument, EstimatedBytes>);

impl Default for ParsedDocuments {
    fn default() -> Self {
        Self(quick_cache::sync::Cache::with_weighter(
            EXPECTED_DOCUMENTS,
            CAPACITY_BYTES,
            EstimatedBytes,
        ))
    }
}

impl ParsedDocuments {
    /// `text` parsed: a copy of the kept parse, or parsed now (and kept if it parses).
    pub fn parse(&self, text: &str) -> Result<ExecutableDocument, async_graphql::parser::Error> {
        if let Some(document) = self.0.get(text) {
            return Ok(document);
        }
        let document = async_graphql::parser::parse_query(text)?;
        self.0.insert(text.to_owned(), document.clone());
        Ok(document)
    }

    /// Parses kept.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_parsed_once_and_its_parse_is_the_parsers() {
        let documents = ParsedDocuments::default();
        let text = "query Q($id: ID!) { node(id: $id) { id ... on Project { name } } }";
        let first = documents.parse(text).unwrap();
        let again = documents.parse(text).unwrap();
        assert_eq!(documents.len(), 1);
        let fresh = async_graphql::parser::parse_query(text).unwrap();
        for document in [&first, &again] {
            assert_eq!(format!("{document:?}"), format!("{fresh:?}"));
        }
        // Another text (even one differing only in spacing) is another entry.
        documents.parse(&text.replace("{ id", "{  id")).unwrap();
        assert_eq!(documents.len(), 2);
    }

    #[test]
    fn what_does_not_parse_is_not_kept() {
        let documents = ParsedDocuments::default();
        assert!(documents.parse("{ node(id: ").is_err());
        assert!(documents.is_empty());
    }

    #[test]
    fn the_cache_stays_within_its_bound() {
        let documents = ParsedDocuments::default();
        let padding = "x".repeat(60_000);
        for i in 0..60 {
            documents
                .parse(&format!("{{ __typename # {i} {padding}\n}}"))
                .unwrap();
        }
        let most = CAPACITY_BYTES / (60_000 * (PARSE_BYTES_PER_TEXT_BYTE + 1));
        assert!(
            documents.len() as u64 <= most + 1,
            "{} documents kept (at most {most})",
            documents.len()
        );
    }
}
