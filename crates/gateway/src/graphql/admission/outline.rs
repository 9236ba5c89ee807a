//! A document's outline, read from its tokens: operations, fragments, and for every
//! selection its field name, the arguments that multiply it (`first`, `last`, `ids`) and
//! its sub-selection. Enough to cost a document without the full parser, which costs far
//! more than this (the README's "GraphQL conventions" has the figures), so a document
//! refused for its cost never reaches it. Anything this reader does not
//! recognize as a GraphQL document it leaves to the parser (`None`).

use super::Map;
use super::scan::{Kind, Token};

/// The index of a selection set in [`Outline::sets`].
pub(super) type SetId = usize;

/// What an argument's value tells the cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arg<'a> {
    /// A non-negative integer (negatives read as 0).
    Int(u64),
    /// `$name`.
    Var(&'a str),
    /// A list of so many items.
    List(usize),
    /// Anything else.
    Other,
}

/// One selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Selection<'a> {
    /// A field (aliases do not matter).
    Field {
        /// The field's name.
        name: &'a str,
        /// Its `first`, `last` and `ids` arguments: a range of [`Outline::args`].
        args: std::ops::Range<usize>,
        /// Its sub-selection.
        set: Option<SetId>,
    },
    /// `...Name`
    Spread(&'a str),
    /// `... on Type { … }` or `... { … }`
    Inline {
        /// The type condition.
        on: Option<&'a str>,
        /// The selection.
        set: SetId,
    },
}

/// A fragment definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fragment<'a> {
    /// Its type condition.
    pub(super) on: &'a str,
    /// Its selection.
    pub(super) set: SetId,
}

/// What the cost walk reads.
#[derive(Debug, Default)]
pub(super) struct Outline<'a> {
    /// Each operation: whether it is a mutation, and its selection.
    pub(super) operations: Vec<(bool, SetId)>,
    /// Fragments by name (the first definition of a name; validation refuses a second).
    pub(super) fragments: Map<&'a str, Fragment<'a>>,
    /// Default values of the operations' variables.
    pub(super) defaults: Map<&'a str, Arg<'a>>,
    /// Every selection set: a range of [`Outline::selections`].
    pub(super) sets: Vec<std::ops::Range<usize>>,
    /// The selections of every set, set after set.
    pub(super) selections: Vec<Selection<'a>>,
    /// The costed arguments of every field, field after field.
    pub(super) args: Vec<(&'a str, Arg<'a>)>,
}

impl<'a> Outline<'a> {
    /// The selections of `set`.
    pub(super) fn set(&self, set: SetId) -> &[Selection<'a>] {
        self.sets
            .get(set)
            .and_then(|range| self.selections.get(range.clone()))
            .unwrap_or_default()
    }

    /// The costed arguments of a field.
    pub(super) fn args(&self, range: &std::ops::Range<usize>) -> &[(&'a str, Arg<'a>)] {
        self.args.get(range.clone()).unwrap_or_default()
    }
}

/// The arguments whose values the cost needs.
const COSTED_ARGS: [&str; 3] = ["first", "last", "ids"];

/// Reads `document`'s outline from its `tokens`; `None` when it is not a document this
/// reader recognizes.
pub(super) fn read<'a>(document: &'a str, tokens: &'a [Token]) -> Option<Outline<'a>> {
    let mut reader = Reader {
        document,
        tokens,
        at: 0,
        outline: Outline::default(),
        pending: Vec::new(),
    };
    if tokens.is_empty() {
        return None;
    }
    while reader.at < tokens.len() {
        reader.definition()?;
    }
    Some(reader.outline)
}

struct Reader<'a> {
    document: &'a str,
    tokens: &'a [Token],
    at: usize,
    outline: Outline<'a>,
    /// Selections of the sets being read (inner sets are finished first).
    pending: Vec<Selection<'a>>,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<Token> {
        self.tokens.get(self.at).copied()
    }

    fn text(&self, token: Token) -> &'a str {
        &self.document[token.start..token.end]
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.peek()?;
        self.at += 1;
        Some(token)
    }

    fn is(&self, kind: Kind) -> bool {
        self.peek().is_some_and(|t| t.kind == kind)
    }

    fn is_punct(&self, byte: u8) -> bool {
        self.is(Kind::Punct(byte))
    }

    fn expect_punct(&mut self, byte: u8) -> Option<()> {
        (self.next()?.kind == Kind::Punct(byte)).then_some(())
    }

    fn name(&mut self) -> Option<&'a str> {
        let token = self.next()?;
        (token.kind == Kind::Name).then(|| self.text(token))
    }

    fn definition(&mut self) -> Option<()> {
        if self.is_punct(b'{') {
            let set = self.selection_set()?;
            self.outline.operations.push((false, set));
            return Some(());
        }
        let keyword = self.name()?;
        match keyword {
            "query" | "mutation" | "subscription" => {
                if self.is(Kind::Name) {
                    self.next();
                }
                if self.is_punct(b'(') {
                    self.variable_definitions()?;
                }
                self.directives()?;
                let set = self.selection_set()?;
                self.outline.operations.push((keyword == "mutation", set));
            }
            "fragment" => {
                let name = self.name()?;
                if self.name()? != "on" {
                    return None;
                }
                let on = self.name()?;
                self.directives()?;
                let set = self.selection_set()?;
                self.outline
                    .fragments
                    .entry(name)
                    .or_insert(Fragment { on, set });
            }
            _ => return None,
        }
        Some(())
    }

    fn variable_definitions(&mut self) -> Option<()> {
        self.expect_punct(b'(')?;
        while !self.is_punct(b')') {
            self.expect_punct(b'$')?;
            let name = self.name()?;
            self.expect_punct(b':')?;
            self.type_reference()?;
            if self.is_punct(b'=') {
                self.next();
                let value = self.value()?;
                self.outline.defaults.insert(name, value);
            }
            self.directives()?;
        }
        self.expect_punct(b')')
    }

    fn type_reference(&mut self) -> Option<()> {
        if self.is_punct(b'[') {
            self.next();
            self.type_reference()?;
            self.expect_punct(b']')?;
        } else {
            self.name()?;
        }
        if self.is_punct(b'!') {
            self.next();
        }
        Some(())
    }

    fn directives(&mut self) -> Option<()> {
        while self.is_punct(b'@') {
            self.next();
            self.name()?;
            if self.is_punct(b'(') {
                self.arguments()?;
            }
        }
        Some(())
    }

    /// Reads `( name: value … )`, keeping the arguments the cost needs.
    fn arguments(&mut self) -> Option<std::ops::Range<usize>> {
        self.expect_punct(b'(')?;
        let start = self.outline.args.len();
        while !self.is_punct(b')') {
            let name = self.name()?;
            self.expect_punct(b':')?;
            let value = self.value()?;
            if COSTED_ARGS.contains(&name) {
                self.outline.args.push((name, value));
            }
        }
        self.expect_punct(b')')?;
        Some(start..self.outline.args.len())
    }

    fn value(&mut self) -> Option<Arg<'a>> {
        let token = self.next()?;
        Some(match token.kind {
            Kind::Punct(b'$') => Arg::Var(self.name()?),
            Kind::Int => {
                let text = self.text(token);
                // Negative or too large: the resolver refuses it; count the default.
                text.parse::<u64>().map_or(Arg::Other, Arg::Int)
            }
            Kind::Float | Kind::Str | Kind::Name => Arg::Other,
            Kind::Punct(b'[') => {
                let mut items = 0;
                while !self.is_punct(b']') {
                    self.value()?;
                    items += 1;
                }
                self.next();
                Arg::List(items)
            }
            Kind::Punct(b'{') => {
                while !self.is_punct(b'}') {
                    self.name()?;
                    self.expect_punct(b':')?;
                    self.value()?;
                }
                self.next();
                Arg::Other
            }
            _ => return None,
        })
    }

    fn selection_set(&mut self) -> Option<SetId> {
        self.expect_punct(b'{')?;
        let mark = self.pending.len();
        while !self.is_punct(b'}') {
            let selection = self.selection()?;
            self.pending.push(selection);
        }
        self.next();
        if self.pending.len() == mark {
            return None;
        }
        let start = self.outline.selections.len();
        self.outline.selections.extend(self.pending.drain(mark..));
        self.outline.sets.push(start..self.outline.selections.len());
        Some(self.outline.sets.len() - 1)
    }

    fn selection(&mut self) -> Option<Selection<'a>> {
        if self.is(Kind::Spread) {
            self.next();
            let named = self
                .peek()
                .filter(|t| t.kind == Kind::Name)
                .map(|t| self.text(t));
            return match named {
                Some("on") => {
                    self.next();
                    let on = self.name()?;
                    self.directives()?;
                    let set = self.selection_set()?;
                    Some(Selection::Inline { on: Some(on), set })
                }
                Some(fragment) => {
                    self.next();
                    self.directives()?;
                    Some(Selection::Spread(fragment))
                }
                None => {
                    self.directives()?;
                    let set = self.selection_set()?;
                    Some(Selection::Inline { on: None, set })
                }
            };
        }
        let mut name = self.name()?;
        if self.is_punct(b':') {
            self.next();
            name = self.name()?;
        }
        let args = if self.is_punct(b'(') {
            self.arguments()?
        } else {
            0..0
        };
        self.directives()?;
        let set = if self.is_punct(b'{') {
            Some(self.selection_set()?)
        } else {
            None
        };
        Some(Selection::Field { name, args, set })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn outline(document: &str) -> Option<Outline<'_>> {
        let tokens = Box::leak(Box::new(super::super::scan::lex(document).unwrap()));
        read(document, tokens)
    }

    #[test]
    fn operations_fragments_and_costed_arguments_are_read() {
        let document = "query Q($n: Int = 50, $ids: [ID!]! = [\"a\", \"b\"]) @d(x: 1) {
            a: projects(first: $n, filter: {x: [1, 2]}) { nodes { id ...F } }
            nodes(ids: [\"x\", \"y\", \"z\"]) { ... on Project { name } ... @skip(if: true) { id } }
        }
        mutation { createProject(input: {name: \"p\"}) { project { id } } }
        fragment F on Project { name }";
        let outline = outline(document).unwrap();
        assert_eq!(outline.operations.len(), 2);
        assert!(outline.operations[1].0, "the second is a mutation");
        assert_eq!(outline.defaults["n"], Arg::Int(50));
        assert_eq!(outline.defaults["ids"], Arg::List(2));
        assert_eq!(outline.fragments["F"].on, "Project");
        let root = outline.set(outline.operations[0].1);
        let Selection::Field { name, args, .. } = &root[0] else {
            panic!("a field")
        };
        assert_eq!(
            (*name, outline.args(args)),
            ("projects", &[("first", Arg::Var("n"))][..])
        );
        let Selection::Field { name, args, .. } = &root[1] else {
            panic!("a field")
        };
        assert_eq!(
            (*name, outline.args(args)),
            ("nodes", &[("ids", Arg::List(3))][..])
        );
    }

    use proptest::prelude::*;

    /// A value written any way GraphQL allows.
    fn value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("ENUM_VALUE".to_owned()),
            (-1_000_i64..1_000).prop_map(|n| n.to_string()),
            Just("-1.5e-3".to_owned()),
            Just("0.25".to_owned()),
            Just("\"a \\\" quoted \\u00e9 string\"".to_owned()),
            Just("\"\"\"block \\\"\"\" string\n with lines\"\"\"".to_owned()),
            Just("$v".to_owned()),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|items| format!("[{}]", items.join(", "))),
                prop::collection::vec(inner, 0..4).prop_map(|items| {
                    let fields: Vec<String> = items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| format!("k{i}: {v}"))
                        .collect();
                    format!("{{{}}}", fields.join(" "))
                }),
            ]
        })
    }

    /// A selection set of fields with aliases, arguments, directives, spreads and inline
    /// fragments, with comments and commas here and there.
    fn selection_set() -> impl Strategy<Value = String> {
        let field = (
            prop::option::of("[a-z][a-zA-Z0-9_]{0,6}"),
            "[a-z_][a-zA-Z0-9_]{0,6}",
            prop::collection::vec(value(), 0..3),
            prop::bool::ANY,
        )
            .prop_map(|(alias, name, args, directive)| {
                let alias = alias.map(|a| format!("{a}: ")).unwrap_or_default();
                let args = if args.is_empty() {
                    String::new()
                } else {
                    let args: Vec<String> = args
                        .iter()
                        .enumerate()
                        .map(|(i, v)| format!("a{i}: {v}"))
                        .collect();
                    format!("({})", args.join(", "))
                };
                let directive = if directive { " @include(if: $v)" } else { "" };
                format!("{alias}{name}{args}{directive}")
            })
            .boxed();
        let leaf = prop::collection::vec(field.clone(), 1..4)
            .prop_map(|f| format!("{{ {} }}", f.join(", ")));
        leaf.prop_recursive(4, 24, 4, move |inner| {
            let nested = (field.clone(), inner.clone()).prop_map(|(f, set)| format!("{f} {set}"));
            let inline =
                (prop::option::of("[A-Z][a-z]{0,5}"), inner).prop_map(|(on, set)| match on {
                    Some(on) => format!("... on {on} {set}"),
                    None => format!("... @skip(if: false) {set}"),
                });
            let spread = Just("...Frag".to_owned());
            prop::collection::vec(prop_oneof![nested, inline, spread, field.clone()], 1..4)
                .prop_map(|items| format!("{{ # a comment\n {} }}", items.join(" ")))
        })
    }

    proptest! {
        /// Whatever the parser reads, the outline reader reads too (otherwise a valid
        /// document would be refused as uncostable).
        #[test]
        fn every_document_the_parser_reads_is_read(
            operation in prop_oneof![Just(""), Just("query Q($v: Boolean = true, $l: [Int!]! = [1]) @d "), Just("mutation ")],
            set in selection_set(),
            fragment in selection_set(),
        ) {
            let document = format!("{operation}{set}\nfragment Frag on T @d(x: 1) {fragment}");
            if async_graphql::parser::parse_query(&document).is_ok() {
                prop_assert!(outline(&document).is_some(), "{}", document);
            }
        }
    }

    #[test]
    fn what_is_not_a_document_is_left_to_the_parser() {
        for document in [
            "{ a(",
            "{ }",
            "query { a } }",
            "{ a: }",
            "fragment F { a }",
            "12",
        ] {
            assert!(outline(document).is_none(), "{document}");
        }
    }
}
