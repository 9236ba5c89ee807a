//! What a document costs: every field 1 plus its selection, root fields, introspection
//! and password hashing more, a connection's selection once per item of its page and
//! `nodes`' once per id; each fragment computed once, so a document's cost is known in
//! time linear in its length however its fragments multiply.

use super::outline::{Arg, Outline, Selection, SetId};
use super::{
    DEFAULT_PAGE, INTROSPECTION_WEIGHTS, MAX_COST, MAX_NESTING, MAX_PAGE, MUTATION_WEIGHT,
    PER_ID_WEIGHT, QUERY_WEIGHT, Refusal, WEIGHTS,
};
use super::{Map, Set};
use async_graphql::Variables;
use async_graphql::parser::types::{BaseType, TypeKind, TypeSystemDefinition};
use async_graphql_value::ConstValue;

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
    fields: Map<String, Map<String, FieldCost>>,
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
        for (root, weight) in [
            (model.mutation.clone(), MUTATION_WEIGHT),
            (model.query.clone(), QUERY_WEIGHT),
        ] {
            if let Some(fields) = model.fields.get_mut(&root) {
                for field in fields.values_mut() {
                    field.weight = weight;
                }
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

    /// The cost of every operation of `outline` (and of fragments no operation uses),
    /// refused above [`MAX_COST`].
    pub(super) fn cost(
        &self,
        outline: &Outline<'_>,
        variables: &Variables,
    ) -> Result<u64, Refusal> {
        let mut values: Map<&str, Arg<'_>> = outline.defaults.clone();
        for (name, value) in variables.iter() {
            let arg = match value {
                ConstValue::Number(n) => n.as_u64().map_or(Arg::Other, Arg::Int),
                ConstValue::List(items) => Arg::List(items.len()),
                _ => Arg::Other,
            };
            values.insert(name.as_str(), arg);
        }
        let mut walk = Walk {
            model: self,
            outline,
            values,
            fragments: Map::default(),
            spreading: Set::default(),
        };
        let mut cost = 0_u64;
        for (mutation, set) in &outline.operations {
            let root = if *mutation {
                &self.mutation
            } else {
                &self.query
            };
            cost = cost.saturating_add(walk.set(*set, Some(root), 0)?);
        }
        for name in outline.fragments.keys() {
            if !walk.fragments.contains_key(name) {
                cost = cost.saturating_add(walk.fragment(name, 0)?);
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

struct Walk<'a, 'o> {
    model: &'a CostModel,
    outline: &'a Outline<'o>,
    /// The variables' values (the request's, else the operations' defaults).
    values: Map<&'a str, Arg<'a>>,
    /// Each fragment's cost, computed once.
    fragments: Map<&'a str, u64>,
    /// Fragments being computed (a second visit is a cycle).
    spreading: Set<&'a str>,
}

impl<'a, 'o: 'a> Walk<'a, 'o> {
    fn set(&mut self, set: SetId, ty: Option<&str>, spreads: usize) -> Result<u64, Refusal> {
        let outline = self.outline;
        let model = self.model;
        let mut cost = 0_u64;
        for selection in outline.set(set) {
            let item = match selection {
                Selection::Field { name, args, set } => {
                    let args = outline.args(args);
                    let known = ty.and_then(|ty| model.field(ty, name));
                    let children = match set {
                        Some(set) => self.set(*set, known.map(|k| k.ty.as_str()), spreads)?,
                        None => 0,
                    };
                    let introspection = INTROSPECTION_WEIGHTS
                        .iter()
                        .find(|(field, _)| field == name)
                        .map(|(_, weight)| *weight);
                    let weight = known.map_or(introspection.unwrap_or(1), |k| k.weight);
                    let (times, each) = match known {
                        Some(k) if k.paged => (self.page(args), children),
                        Some(k) if k.per_id => {
                            (self.ids(args), children.saturating_add(PER_ID_WEIGHT))
                        }
                        _ => (1, children),
                    };
                    weight.saturating_add(times.saturating_mul(each))
                }
                Selection::Spread(fragment) => self.fragment(fragment, spreads)?,
                Selection::Inline { on, set } => self.set(*set, on.or(ty), spreads)?,
            };
            cost = cost.saturating_add(item);
        }
        Ok(cost)
    }

    fn fragment(&mut self, name: &'a str, spreads: usize) -> Result<u64, Refusal> {
        if let Some(cost) = self.fragments.get(name) {
            return Ok(*cost);
        }
        let Some(fragment) = self.outline.fragments.get(name) else {
            // Unknown: validation names it.
            return Ok(0);
        };
        if spreads >= MAX_NESTING {
            return Err(Refusal::TooDeep);
        }
        if !self.spreading.insert(name) {
            return Err(Refusal::FragmentCycle {
                fragment: name.to_owned(),
            });
        }
        let cost = self.set(fragment.set, Some(fragment.on), spreads + 1)?;
        self.spreading.remove(name);
        self.fragments.insert(name, cost);
        Ok(cost)
    }

    fn resolve(&self, arg: Arg<'a>) -> Arg<'a> {
        match arg {
            Arg::Var(name) => self.values.get(name).copied().unwrap_or(Arg::Other),
            other => other,
        }
    }

    /// A connection's page size: `first` or `last`, else the default; at most the largest
    /// page (a larger one is refused by the resolver).
    fn page(&self, args: &[(&'a str, Arg<'a>)]) -> u64 {
        args.iter()
            .filter(|(name, _)| *name == "first" || *name == "last")
            .filter_map(|(_, arg)| match self.resolve(*arg) {
                Arg::Int(n) => Some(n),
                _ => None,
            })
            .max()
            .unwrap_or(DEFAULT_PAGE)
            .clamp(1, MAX_PAGE)
    }

    /// How many ids `nodes` is given.
    fn ids(&self, args: &[(&'a str, Arg<'a>)]) -> u64 {
        args.iter()
            .filter(|(name, _)| *name == "ids")
            .map(|(_, arg)| match self.resolve(*arg) {
                Arg::List(items) => u64::try_from(items).unwrap_or(u64::MAX),
                _ => 1,
            })
            .max()
            .unwrap_or(1)
            .max(1)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::{Refusal, admit};
    use super::*;

    fn model() -> CostModel {
        CostModel::from_sdl(&crate::graphql::sdl())
    }

    fn cost(query: &str) -> Result<u64, Refusal> {
        admit(query, &Variables::default(), &model())
    }

    #[test]
    fn every_weight_names_a_field_of_the_schema() {
        assert_eq!(model().unknown_weights(), Vec::<String>::new());
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
        // 10 + 50 × (edges 1 + node 1 + id 1)
        assert_eq!(
            cost("{ projects(first: 50) { edges { node { id } } } }"),
            Ok(160)
        );
        // Default page: 20.
        assert_eq!(cost("{ projects { nodes { id } } }"), Ok(50));
        // 10 + 3 × (10 + 1)
        assert_eq!(cost("{ nodes(ids: [\"a\", \"b\", \"c\"]) { id } }"), Ok(43));
        // 2,000 + its selection.
        assert_eq!(cost("{ __schema { types { name } } }"), Ok(2_002));
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

    #[test]
    fn variables_and_their_defaults_multiply() {
        let query = "query($n: Int = 100, $ids: [ID!]!) { projects(first: $n) { nodes { id } } nodes(ids: $ids) { id } }";
        let variables = Variables::from_json(serde_json::json!({ "ids": ["a", "b"] }));
        // 10 + 100 × 2, and 10 + 2 × 11
        assert_eq!(admit(query, &variables, &model()), Ok(210 + 32));
        let given = Variables::from_json(serde_json::json!({ "n": 5, "ids": [] }));
        assert_eq!(admit(query, &given, &model()), Ok(20 + 21));
    }
}
