//! Admission of a GraphQL document before anything else is spent on it: before the
//! caller is authenticated, before validation, before any resolver or SQL statement.
//!
//! 1. [`scan`]: one pass over the text, without allocating, refuses a document that is
//!    too long, has too many tokens, or nests `[`, `{` and `(` too deeply (nested values
//!    in arguments and variable defaults would otherwise overflow the parser's stack: its
//!    recursion limit covers selections only).
//! 2. The document is parsed once (the parse is kept for execution).
//! 3. [`CostModel::cost`]: the document's cost, each fragment computed once, so that
//!    fragment spreads, aliases and inline fragments count at their true multiplicity in
//!    time linear in the document's length. Every field costs (`__typename` and
//!    introspection too); a connection multiplies its selection by its page size, `nodes`
//!    by its ids; fields that hash passwords or walk whole audit chains weigh more.
//!
//! Validation's own depth walk runs only on documents admitted here, whose expanded size
//! the cost bounds.

use async_graphql::parser::types::{
    BaseType, ExecutableDocument, Selection, SelectionSet, TypeKind, TypeSystemDefinition,
};
use async_graphql::{ServerError, Variables};
use async_graphql_value::{ConstValue, Value};
use kernel::ErrorCode;
use std::collections::{HashMap, HashSet};

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

/// What each field costs beyond 1, where it costs more: password hashing, whole-chain
/// audit verification, and every root mutation (a transaction with its audit event).
const WEIGHTS: &[(&str, &str, u64)] = &[
    ("Mutation", "signUp", 5_000),
    ("Mutation", "logIn", 5_000),
    ("Query", "verifyAuditChain", 4_000),
    ("Mutation", "purgeAuditEvents", 1_000),
    ("Mutation", "importCatalog", 1_000),
];
/// What a root mutation field not in [`WEIGHTS`] costs.
const MUTATION_WEIGHT: u64 = 10;
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
}

impl Refusal {
    /// The code the client sees.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TooLong { .. } | Self::TooManyTokens => ErrorCode::QueryTooLarge,
            Self::TooDeep => ErrorCode::QueryTooDeep,
            Self::TooComplex { .. } => ErrorCode::QueryTooComplex,
            Self::FragmentCycle { .. } => ErrorCode::GraphqlValidationFailed,
            Self::Parse(_) => ErrorCode::GraphqlParseFailed,
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
        };
        let mut error = crate::error::request_error(self.code(), message);
        if let (Self::TooComplex { cost }, Some(ext)) = (&self, error.extensions.as_mut()) {
            ext.set("cost", *cost);
            ext.set("maxCost", MAX_COST);
        }
        error
    }
}

/// Checks a document's length, tokens and nesting in one pass over its bytes.
pub fn scan(document: &str) -> Result<(), Refusal> {
    let bytes = document.as_bytes();
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(Refusal::TooLong { bytes: bytes.len() });
    }
    let (mut at, mut depth, mut tokens) = (0, 0_usize, 0_usize);
    while at < bytes.len() {
        let byte = bytes[at];
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                at += 1;
                continue;
            }
            b'#' => {
                while at < bytes.len() && bytes[at] != b'\n' && bytes[at] != b'\r' {
                    at += 1;
                }
                continue;
            }
            b'"' => at = skip_string(bytes, at),
            b'[' | b'{' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(Refusal::TooDeep);
                }
                at += 1;
            }
            b']' | b'}' | b')' => {
                depth = depth.saturating_sub(1);
                at += 1;
            }
            b'.' if bytes[at..].starts_with(b"...") => at += 3,
            b'_' | b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'+' => {
                at += 1;
                while at < bytes.len()
                    && matches!(bytes[at], b'_' | b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.')
                {
                    at += 1;
                }
            }
            _ => at += 1,
        }
        tokens += 1;
        if tokens > MAX_TOKENS {
            return Err(Refusal::TooManyTokens);
        }
    }
    Ok(())
}

/// The index after the string starting at `at` (a `"…"` or a `"""…"""` block string); the
/// end of the text when it is not closed.
fn skip_string(bytes: &[u8], at: usize) -> usize {
    if bytes[at..].starts_with(b"\"\"\"") {
        let mut i = at + 3;
        while i < bytes.len() {
            if bytes[i..].starts_with(b"\\\"\"\"") {
                i += 4;
            } else if bytes[i..].starts_with(b"\"\"\"") {
                return i + 3;
            } else {
                i += 1;
            }
        }
        return bytes.len();
    }
    let mut i = at + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            b'\n' | b'\r' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

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

/// What the cost walk knows of a field: its named type and how it multiplies.
#[derive(Debug, Clone)]
struct FieldCost {
    /// The named type it returns (lists unwrapped).
    ty: String,
    /// What the field itself costs.
    weight: u64,
    /// A connection (it takes `first`): its selection counts once per item of the page.
    paged: bool,
    /// It takes `ids`: its selection counts once per id.
    per_id: bool,
}

/// The schema as the cost walk needs it, read once from its SDL.
#[derive(Debug, Clone, Default)]
pub struct CostModel {
    fields: HashMap<String, HashMap<String, FieldCost>>,
    query: String,
    mutation: String,
}

impl CostModel {
    /// Reads the object and interface types of `sdl` (the schema's own).
    pub fn from_sdl(sdl: &str) -> Self {
        let mut model = Self {
            query: "Query".into(),
            mutation: "Mutation".into(),
            ..Self::default()
        };
        let Ok(document) = async_graphql::parser::parse_schema(sdl) else {
            return model;
        };
        for definition in document.definitions {
            match definition {
                TypeSystemDefinition::Schema(schema) => {
                    if let Some(query) = &schema.node.query {
                        model.query = query.node.to_string();
                    }
                    if let Some(mutation) = &schema.node.mutation {
                        model.mutation = mutation.node.to_string();
                    }
                }
                TypeSystemDefinition::Type(ty) => {
                    let fields = match &ty.node.kind {
                        TypeKind::Object(object) => &object.fields,
                        TypeKind::Interface(interface) => &interface.fields,
                        _ => continue,
                    };
                    let type_name = ty.node.name.node.to_string();
                    let costs = fields
                        .iter()
                        .map(|field| {
                            let field = &field.node;
                            let mut named = &field.ty.node;
                            while let BaseType::List(inner) = &named.base {
                                named = inner;
                            }
                            let has =
                                |arg: &str| field.arguments.iter().any(|a| a.node.name.node == arg);
                            (
                                field.name.node.to_string(),
                                FieldCost {
                                    ty: named.base.to_string(),
                                    weight: 1,
                                    paged: has("first"),
                                    per_id: has("ids"),
                                },
                            )
                        })
                        .collect();
                    model.fields.insert(type_name, costs);
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        let mutation = model.mutation.clone();
        if let Some(fields) = model.fields.get_mut(&mutation) {
            for field in fields.values_mut() {
                field.weight = MUTATION_WEIGHT;
            }
        }
        for (ty, field, weight) in WEIGHTS {
            if let Some(field) = model.fields.get_mut(*ty).and_then(|f| f.get_mut(*field)) {
                field.weight = *weight;
            }
        }
        model
    }

    /// Fields named in [`WEIGHTS`] that the schema does not have (a test keeps this empty).
    pub fn unknown_weights(&self) -> Vec<String> {
        WEIGHTS
            .iter()
            .filter(|(ty, field, _)| {
                self.fields
                    .get(*ty)
                    .is_none_or(|fields| !fields.contains_key(*field))
            })
            .map(|(ty, field, _)| format!("{ty}.{field}"))
            .collect()
    }

    /// The cost of every operation of `document` (and of fragments no operation uses),
    /// refused above [`MAX_COST`].
    pub fn admit(
        &self,
        document: &ExecutableDocument,
        variables: &Variables,
    ) -> Result<u64, Refusal> {
        let mut walk = Walk {
            model: self,
            document,
            variables: variables_with_defaults(document, variables),
            fragments: HashMap::new(),
            spreading: HashSet::new(),
        };
        let mut cost = 0_u64;
        for (_, operation) in document.operations.iter() {
            let root = match operation.node.ty {
                async_graphql::parser::types::OperationType::Mutation => &self.mutation,
                _ => &self.query,
            };
            let operation_cost =
                walk.selection_set(&operation.node.selection_set.node, Some(root), 0)?;
            cost = cost.saturating_add(operation_cost);
        }
        for name in document.fragments.keys() {
            if !walk.fragments.contains_key(name.as_str()) {
                cost = cost.saturating_add(walk.fragment(name.as_str(), 0)?);
            }
        }
        if cost > MAX_COST {
            return Err(Refusal::TooComplex { cost });
        }
        Ok(cost)
    }

    fn field(&self, ty: &str, name: &str) -> Option<&FieldCost> {
        self.fields.get(ty)?.get(name)
    }
}

/// The request's variables, and the operations' defaults for those it leaves out.
fn variables_with_defaults<'a>(
    document: &'a ExecutableDocument,
    variables: &'a Variables,
) -> HashMap<&'a str, &'a ConstValue> {
    let mut values: HashMap<&str, &ConstValue> = HashMap::new();
    for (_, operation) in document.operations.iter() {
        for definition in &operation.node.variable_definitions {
            if let Some(default) = definition.node.default_value() {
                values.insert(definition.node.name.node.as_str(), default);
            }
        }
    }
    for (name, value) in variables.iter() {
        values.insert(name.as_str(), value);
    }
    values
}

struct Walk<'a> {
    model: &'a CostModel,
    document: &'a ExecutableDocument,
    variables: HashMap<&'a str, &'a ConstValue>,
    /// Each fragment's cost, computed once.
    fragments: HashMap<&'a str, u64>,
    /// Fragments being computed (a second visit is a cycle).
    spreading: HashSet<&'a str>,
}

impl<'a> Walk<'a> {
    fn selection_set(
        &mut self,
        set: &'a SelectionSet,
        ty: Option<&str>,
        spreads: usize,
    ) -> Result<u64, Refusal> {
        let mut cost = 0_u64;
        for item in &set.items {
            let item_cost = match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let model = self.model;
                    let known = ty.and_then(|ty| model.field(ty, field.name.node.as_str()));
                    let children = if field.selection_set.node.items.is_empty() {
                        0
                    } else {
                        let child_type = known.map(|k| k.ty.as_str());
                        self.selection_set(&field.selection_set.node, child_type, spreads)?
                    };
                    let weight = known.map_or(1, |k| k.weight);
                    let times = known.map_or(1, |k| self.multiplier(k, field));
                    let each = if known.is_some_and(|k| k.per_id) {
                        children.saturating_add(PER_ID_WEIGHT)
                    } else {
                        children
                    };
                    weight.saturating_add(times.saturating_mul(each))
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(spread.node.fragment_name.node.as_str(), spreads)?
                }
                Selection::InlineFragment(inline) => {
                    let inline = &inline.node;
                    let condition = inline
                        .type_condition
                        .as_ref()
                        .map(|c| c.node.on.node.to_string());
                    let ty = condition.as_deref().or(ty).map(str::to_owned);
                    self.selection_set(&inline.selection_set.node, ty.as_deref(), spreads)?
                }
            };
            cost = cost.saturating_add(item_cost);
        }
        Ok(cost)
    }

    fn fragment(&mut self, name: &'a str, spreads: usize) -> Result<u64, Refusal> {
        if let Some(cost) = self.fragments.get(name) {
            return Ok(*cost);
        }
        let Some((key, definition)) = self.document.fragments.get_key_value(name) else {
            // Unknown: validation names it.
            return Ok(0);
        };
        if spreads >= MAX_NESTING {
            return Err(Refusal::TooDeep);
        }
        if !self.spreading.insert(key.as_str()) {
            return Err(Refusal::FragmentCycle {
                fragment: name.to_owned(),
            });
        }
        let ty = definition.node.type_condition.node.on.node.to_string();
        let cost =
            self.selection_set(&definition.node.selection_set.node, Some(&ty), spreads + 1)?;
        self.spreading.remove(key.as_str());
        self.fragments.insert(key.as_str(), cost);
        Ok(cost)
    }

    /// How many times a field's selection counts: a connection's page size, the number of
    /// ids given to `nodes`, otherwise once.
    fn multiplier(&self, known: &FieldCost, field: &async_graphql::parser::types::Field) -> u64 {
        if known.paged {
            let page = ["first", "last"]
                .iter()
                .filter_map(|arg| field.get_argument(arg))
                .filter_map(|value| self.integer(&value.node))
                .max()
                .unwrap_or(DEFAULT_PAGE);
            return page.clamp(1, MAX_PAGE);
        }
        if known.per_id {
            let ids = field
                .get_argument("ids")
                .map_or(1, |value| match &value.node {
                    Value::List(items) => items.len(),
                    Value::Variable(name) => match self.variables.get(name.as_str()) {
                        Some(ConstValue::List(items)) => items.len(),
                        _ => 1,
                    },
                    _ => 1,
                });
            return u64::try_from(ids).unwrap_or(u64::MAX).max(1);
        }
        1
    }

    fn integer(&self, value: &Value) -> Option<u64> {
        let number = match value {
            Value::Number(number) => number,
            Value::Variable(name) => match self.variables.get(name.as_str()) {
                Some(ConstValue::Number(number)) => number,
                _ => return None,
            },
            _ => return None,
        };
        number
            .as_u64()
            .or_else(|| number.as_i64().map(|n| n.max(0).unsigned_abs()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn model() -> CostModel {
        CostModel::from_sdl(&crate::graphql::sdl())
    }

    fn cost(query: &str) -> Result<u64, Refusal> {
        scan(query)?;
        let document =
            async_graphql::parser::parse_query(query).map_err(|e| Refusal::Parse(e.to_string()))?;
        model().admit(&document, &Variables::default())
    }

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

    #[test]
    fn every_weight_names_a_field_of_the_schema() {
        assert_eq!(model().unknown_weights(), Vec::<String>::new());
    }

    #[test]
    fn nesting_in_values_is_refused_before_parsing() {
        let deep = format!(
            "{{ __typename(x: {}1{}) }}",
            "[".repeat(1_500),
            "]".repeat(1_500)
        );
        assert_eq!(scan(&deep), Err(Refusal::TooDeep));
        let objects = format!("{{ f(x: {}1{}) }}", "{a: ".repeat(100), "}".repeat(100));
        assert_eq!(scan(&objects), Err(Refusal::TooDeep));
        // Brackets inside strings and comments do not count.
        let quoted = format!("{{ f(x: \"{}\") }} # {}", "[".repeat(500), "{".repeat(500));
        assert_eq!(scan(&quoted), Ok(()));
        let block = format!("{{ f(x: \"\"\"{}\\\"\"\"\"\"\") }}", "(".repeat(500));
        assert_eq!(scan(&block), Ok(()));
    }

    #[test]
    fn size_and_tokens_are_bounded() {
        let long = format!("{{ {} }}", "a ".repeat(40_000));
        assert_eq!(scan(&long), Err(Refusal::TooLong { bytes: 80_004 }));
        let many = format!("{{ {} }}", "a,".repeat(20_000));
        assert_eq!(scan(&many), Err(Refusal::TooManyTokens));
    }

    #[test]
    fn fragments_count_at_their_true_multiplicity() {
        let mut doubling = String::from("fragment F0 on Query { __typename }\n");
        for i in 1..=30 {
            doubling.push_str(&format!(
                "fragment F{i} on Query {{ ...F{p} ...F{p} }}\n",
                p = i - 1
            ));
        }
        doubling.push_str("{ ...F30 }");
        assert_eq!(cost(&doubling), Err(Refusal::TooComplex { cost: 1 << 30 }));
        assert_eq!(
            cost("fragment A on Query { ...B } fragment B on Query { ...A } { ...A }"),
            Err(Refusal::FragmentCycle {
                fragment: "A".into()
            })
        );
    }

    #[test]
    fn connections_multiply_and_heavy_fields_weigh() {
        assert_eq!(cost("{ __typename }"), Ok(1));
        // 1 + 50 × (edges 1 + node 1 + id 1)
        assert_eq!(
            cost("{ projects(first: 50) { edges { node { id } } } }"),
            Ok(151)
        );
        // Default page: 20.
        assert_eq!(cost("{ projects { nodes { id } } }"), Ok(41));
        // 1 + 3 × (10 + 1)
        assert_eq!(cost("{ nodes(ids: [\"a\", \"b\", \"c\"]) { id } }"), Ok(34));
        assert_eq!(
            cost("mutation { createProject(input: {name: \"x\"}) { project { id } } }"),
            Ok(12)
        );
        let signups: String = (0..3)
            .map(|i| format!("s{i}: signUp(input: {{email: \"a\", password: \"b\", name: \"c\"}}) {{ user {{ id }} }} "))
            .collect();
        assert!(matches!(
            cost(&format!("mutation {{ {signups} }}")),
            Err(Refusal::TooComplex { .. })
        ));
    }
}
