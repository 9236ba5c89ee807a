//! Admission of a GraphQL document before anything else is spent on it: before the
//! caller is authenticated, before the parser, before validation, before any resolver or
//! SQL statement.
//!
//! 1. [`scan`]: one pass over the text refuses a document that is too long, has too many
//!    tokens, or nests `[`, `{` and `(` too deeply (nested values in arguments and
//!    variable defaults would otherwise overflow the parser's stack).
//! 2. [`outline`]: the tokens are read into an outline of selections, much cheaper than
//!    the parser, and [`cost`] prices it with each fragment computed once.
//! 3. Only then is the document parsed (once: the parse is kept for execution, and for
//!    the next request with the same text: [`parsed`]), and its strings checked
//!    ([`strings`]).
//!
//! Validation's own depth walk runs only on documents admitted here, whose expanded size
//! the cost bounds.

mod cost;
mod outline;
mod parsed;
mod persisted;
mod scan;
mod strings;

pub use cost::CostModel;
pub use parsed::ParsedDocuments;
pub use persisted::{PersistedDocuments, Trusted};
pub use strings::{BadString, MAX_STRING_CHARS, check_strings};

use async_graphql::{ServerError, Variables};
use kernel::ErrorCode;

/// The maps admission looks names up in, with a fast hasher (the keys are the document's
/// own names: a slow hash would make refusing slow).
type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type Set<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// The most a document may be, in bytes (GraphiQL's introspection query is about 2 KB).
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// The most tokens a document may have.
pub const MAX_TOKENS: usize = 10_000;
/// The deepest `[`, `{` and `(` may nest, together (and fragment spreads within spreads).
pub const MAX_NESTING: usize = 64;
/// The most a document may cost (see [`CostModel`]).
pub const MAX_COST: u64 = 10_000;
/// Page size of a connection whose `first`/`last` is not given.
pub const DEFAULT_PAGE: u64 = 20;
/// Largest page a connection serves.
pub const MAX_PAGE: u64 = 100;

/// What each field costs, where it costs more than 1: password hashing, whole-chain audit
/// verification, document bodies (root query and mutation fields: see below).
const WEIGHTS: &[(&str, &str, u64)] = &[
    ("Mutation", "signUp", 5_000),
    ("Mutation", "logIn", 5_000),
    ("Query", "verifyAuditChain", 4_000),
    ("Mutation", "purgeAuditEvents", 1_000),
    ("Mutation", "importCatalog", 1_000),
    // Parses up to 250 documents (1 MiB): one per document, as variables repeat freely.
    ("Mutation", "registerTrustedDocuments", 5_000),
    // Up to 200,000 characters each: a hundred of them is 20 MB of answer.
    ("Document", "body", 100),
    ("DocumentVersion", "body", 100),
];
/// What a root mutation field not in [`WEIGHTS`] costs.
const MUTATION_WEIGHT: u64 = 10;
/// What a root query field not in [`WEIGHTS`] costs (each reads the database).
const QUERY_WEIGHT: u64 = 10;
/// What introspection costs beyond its selection: the schema's types are listed with
/// their fields, arguments and types, which the selection's size does not show.
const INTROSPECTION_WEIGHTS: &[(&str, u64)] = &[("__schema", 2_000), ("__type", 200)];
/// What each id given to `nodes` costs besides its selection (a lookup in its
/// organization).
const PER_ID_WEIGHT: u64 = 10;

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Longer than [`MAX_DOCUMENT_BYTES`].
    TooLong {
        /// Its length.
        bytes: usize,
    },
    /// More than [`MAX_TOKENS`] tokens.
    TooManyTokens,
    /// Brackets or fragment spreads nested deeper than [`MAX_NESTING`].
    TooDeep,
    /// Costs more than [`MAX_COST`].
    TooComplex {
        /// What it costs (saturating).
        cost: u64,
    },
    /// A fragment spreads itself, directly or not.
    FragmentCycle {
        /// One fragment of the cycle.
        fragment: String,
    },
    /// The text is not a GraphQL document.
    Parse(String),
    /// The outline reader did not recognize the document: the parser decides whether it
    /// is one (and, if it is one the reader cannot read, it is refused all the same,
    /// since its cost is unknown).
    Unreadable,
}

impl Refusal {
    /// The code the client sees.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TooLong { .. } | Self::TooManyTokens => ErrorCode::QueryTooLarge,
            Self::TooDeep => ErrorCode::QueryTooDeep,
            Self::TooComplex { .. } => ErrorCode::QueryTooComplex,
            Self::FragmentCycle { .. } => ErrorCode::GraphqlValidationFailed,
            Self::Parse(_) | Self::Unreadable => ErrorCode::GraphqlParseFailed,
        }
    }

    /// The error the client gets.
    pub fn into_server_error(self) -> ServerError {
        let message = match &self {
            Self::TooLong { bytes } => {
                format!("the document is {bytes} bytes; at most {MAX_DOCUMENT_BYTES} are accepted")
            }
            Self::TooManyTokens => {
                format!("the document has more than {MAX_TOKENS} tokens")
            }
            Self::TooDeep => {
                format!("the document nests brackets or fragment spreads deeper than {MAX_NESTING}")
            }
            Self::TooComplex { cost } => format!(
                "the document costs {cost}; at most {MAX_COST} is accepted (every field costs 1, \
                 a connection multiplies its selection by its page size)"
            ),
            Self::FragmentCycle { fragment } => {
                format!("fragment {fragment} spreads itself")
            }
            Self::Parse(message) => message.clone(),
            Self::Unreadable => "the document could not be read".into(),
        };
        let mut error = crate::error::request_error(self.code(), message);
        if let (Self::TooComplex { cost }, Some(ext)) = (&self, error.extensions.as_mut()) {
            ext.set("cost", *cost);
            ext.set("maxCost", MAX_COST);
        }
        error
    }
}

/// Whether `document` is within the size, token and nesting limits (what a document
/// must be before the parser reads it).
pub fn readable(document: &str) -> Result<(), Refusal> {
    scan::lex(document).map(|_| ())
}

/// Whether a manifest's operation is a GraphQL document of one operation, named and
/// typed as the manifest says; why not. Whether the schema accepts it is checked when it
/// runs, like any document's.
pub fn check_trusted_operation(operation: &tenancy::ManifestOperation) -> Result<(), String> {
    use async_graphql::parser::types::OperationType;
    use tenancy::TrustedOperationType;
    readable(&operation.body).map_err(|refused| refused.into_server_error().message)?;
    let document = async_graphql::parser::parse_query(&operation.body)
        .map_err(|e| format!("is not a GraphQL document: {e}"))?;
    let mut operations = document.operations.iter();
    let (Some((name, defined)), None) = (operations.next(), operations.next()) else {
        return Err("must hold exactly one operation".into());
    };
    if name.map(|n| n.as_str()) != Some(operation.name.as_str()) {
        return Err(format!(
            "must define the operation the manifest names ({})",
            operation.name
        ));
    }
    let kind = match defined.node.ty {
        OperationType::Query => TrustedOperationType::Query,
        OperationType::Mutation => TrustedOperationType::Mutation,
        OperationType::Subscription => return Err("is a subscription; this API has none".into()),
    };
    if kind != operation.operation_type {
        return Err(format!(
            "is a {}, not the {} the manifest says",
            kind.as_str(),
            operation.operation_type.as_str()
        ));
    }
    Ok(())
}

/// Admits `document` (with its `variables`): its cost, or why it is refused.
/// [`Refusal::Unreadable`] means the outline reader did not recognize it: the parser then
/// decides (see [`Refusal::Unreadable`]).
pub fn admit(document: &str, variables: &Variables, costs: &CostModel) -> Result<u64, Refusal> {
    let tokens = scan::lex(document)?;
    let outline = outline::read(document, &tokens).ok_or(Refusal::Unreadable)?;
    costs.cost(&outline, variables)
}
