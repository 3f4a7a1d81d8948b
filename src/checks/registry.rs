//! The registry of check types: [`CHECK_TYPES`] (each `type` name, what passing means,
//! its fields) and [`CheckKind`] (a check's parameters, one variant per type), both
//! generated from the one list in `types/mod.rs` by the `check_types!` macro below.
//!
//! The parser drives its validation and its error messages from [`CHECK_TYPES`]; the
//! data model, the runner and the wire go through [`CheckKind`], which hands each call
//! to its type's `CheckType` implementation. Meta-tests below keep the list sorted,
//! unique, documented and fully exemplified.

use super::check_type::{CheckType, FieldProblem, FieldSpec, FieldType, Fields, opt, req};

pub use super::types::{CHECK_TYPES, CheckKind};

/// A registered check type as the parser and the documentation see it.
#[derive(Clone, Copy, Debug)]
pub struct TypeInfo {
    /// The `type` value, e.g. `"file_exists"`.
    pub name: &'static str,
    /// What passing means, one line.
    pub doc: &'static str,
    /// Type-specific fields (the [`COMMON_FIELDS`] are accepted too).
    pub fields: &'static [FieldSpec],
    /// Builds the check from fields already matched against `fields`.
    pub(crate) build: fn(&Fields) -> Result<CheckKind, FieldProblem>,
}

impl TypeInfo {
    /// The entry for `T`; used by `check_types!`.
    pub(crate) const fn of<T: CheckType>() -> TypeInfo
    where
        CheckKind: From<T>,
    {
        TypeInfo {
            name: T::NAME,
            doc: T::DOC,
            fields: T::FIELDS,
            build: build::<T>,
        }
    }
}

fn build<T: CheckType>(fields: &Fields) -> Result<CheckKind, FieldProblem>
where
    CheckKind: From<T>,
{
    T::from_fields(fields).map(CheckKind::from)
}

/// Fields every check accepts: `type` (required), `expect` and `timeout`.
pub const COMMON_FIELDS: &[FieldSpec] = &[
    req("type", FieldType::String),
    opt("expect", FieldType::Boolean),
    opt("timeout", FieldType::Duration),
];

/// Looks up a check type by its exact (case-sensitive) name.
pub fn check_type(name: &str) -> Option<&'static TypeInfo> {
    CHECK_TYPES.iter().find(|t| t.name == name)
}

/// Generates, from a list of `module::Type` entries (each type implementing
/// `CheckType`, sorted by type name), everything that has to know every type:
///
/// - [`CheckKind`], one variant per type named after its struct. The variant name is the
///   tag on the wire, so a check set encodes exactly as `{"FileExists": {"path": …}}`
///   (serde's externally tagged form) and decodes through serde's struct-variant path,
///   which takes the fields as a map or, in declaration order, as an array. `Debug`
///   prints the inner struct, as a struct variant would.
/// - `From<Type> for CheckKind`, and `type_name`, `to_fields`, `validate`, `expected` and
///   `run` on [`CheckKind`],
///   each handing over to the type.
/// - [`CHECK_TYPES`], in list order.
macro_rules! check_types {
    ($($module:ident :: $ty:ident),+ $(,)?) => {
        $(pub use $module::$ty;)+

        /// What a check tests and its parameters: one variant per registered type (see
        /// [`CHECK_TYPES`]), holding that type's struct.
        #[derive(Clone, PartialEq, serde::Serialize)]
        pub enum CheckKind {
            $(
                #[doc = concat!("A [`", stringify!($ty), "`] check.")]
                $ty($ty),
            )+
        }

        $(
            impl From<$ty> for CheckKind {
                fn from(check: $ty) -> Self {
                    CheckKind::$ty(check)
                }
            }
        )+

        impl CheckKind {
            /// The `type` name of this check, e.g. `"file_exists"`.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(CheckKind::$ty(_) => <$ty as $crate::checks::check_type::CheckType>::NAME,)+
                }
            }

            /// The check's fields as an operations file writes them (without `type`).
            pub(crate) fn to_fields(&self) -> Vec<(&'static str, $crate::checks::check_type::Typed)> {
                match self {
                    $(CheckKind::$ty(check) => $crate::checks::check_type::CheckType::to_fields(check),)+
                }
            }

            /// The type's rules for its parameters.
            pub(crate) fn validate(&self) -> Result<(), $crate::checks::check_type::FieldProblem> {
                match self {
                    $(CheckKind::$ty(check) => $crate::checks::check_type::CheckType::validate(check),)+
                }
            }

            /// What passing needs, in the words of the check's `found` facts.
            pub(crate) fn expected(&self) -> $crate::checks::outcome::Facts {
                match self {
                    $(CheckKind::$ty(check) => $crate::checks::check_type::CheckType::expected(check),)+
                }
            }

            /// Runs the check on this host (without its timeout or `expect`).
            pub(crate) async fn run(self, ctx: $crate::checks::run::CheckContext) -> $crate::checks::outcome::CheckResult {
                match self {
                    $(CheckKind::$ty(check) => $crate::checks::check_type::CheckType::run(check, ctx).await,)+
                }
            }
        }

        impl std::fmt::Debug for CheckKind {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    $(CheckKind::$ty(check) => std::fmt::Debug::fmt(check, f),)+
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for CheckKind {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                use serde::de::{self, VariantAccess};

                const VARIANTS: &[&str] = &[$(stringify!($ty)),+];

                #[allow(non_camel_case_types)]
                enum Tag {
                    $($ty,)+
                }

                impl<'de> serde::Deserialize<'de> for Tag {
                    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                        struct TagVisitor;
                        impl<'de> de::Visitor<'de> for TagVisitor {
                            type Value = Tag;
                            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                                f.write_str("variant identifier")
                            }
                            fn visit_str<E: de::Error>(self, value: &str) -> Result<Tag, E> {
                                match value {
                                    $(stringify!($ty) => Ok(Tag::$ty),)+
                                    other => Err(E::unknown_variant(other, VARIANTS)),
                                }
                            }
                            fn visit_bytes<E: de::Error>(self, value: &[u8]) -> Result<Tag, E> {
                                match std::str::from_utf8(value) {
                                    Ok(text) => self.visit_str(text),
                                    Err(_) => Err(E::unknown_variant(&String::from_utf8_lossy(value), VARIANTS)),
                                }
                            }
                        }
                        deserializer.deserialize_identifier(TagVisitor)
                    }
                }

                struct KindVisitor;
                impl<'de> de::Visitor<'de> for KindVisitor {
                    type Value = CheckKind;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("enum CheckKind")
                    }
                    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<CheckKind, A::Error> {
                        let (tag, variant) = data.variant::<Tag>()?;
                        match tag {
                            $(Tag::$ty => variant
                                .struct_variant(&[], $crate::checks::registry::StructVisitor::<$ty>::new())
                                .map(CheckKind::$ty),)+
                        }
                    }
                }

                deserializer.deserialize_enum("CheckKind", VARIANTS, KindVisitor)
            }
        }

        /// Every check type, sorted by name.
        pub const CHECK_TYPES: &[$crate::checks::registry::TypeInfo] =
            &[$($crate::checks::registry::TypeInfo::of::<$ty>(),)+];
    };
}
pub(crate) use check_types;

/// Decodes one struct variant's body, given as a map or as an array, into `T`.
pub(crate) struct StructVisitor<T>(std::marker::PhantomData<T>);

impl<T> StructVisitor<T> {
    pub(crate) fn new() -> Self {
        StructVisitor(std::marker::PhantomData)
    }
}

impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for StructVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("struct variant")
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(self, map: M) -> Result<T, M::Error> {
        T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
    }

    fn visit_seq<S: serde::de::SeqAccess<'de>>(self, seq: S) -> Result<T, S::Error> {
        T::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::parse::parse_operations;

    fn parse(text: &str) -> Result<crate::checks::CheckSet, crate::checks::SpecError> {
        parse_operations(text, "ops.json")
    }

    #[test]
    fn every_registered_type_is_documented_unique_and_in_the_example() {
        let mut names: Vec<_> = CHECK_TYPES.iter().map(|t| t.name).collect();
        let sorted = {
            let mut s = names.clone();
            s.sort_unstable();
            s
        };
        assert_eq!(names, sorted, "CHECK_TYPES must stay sorted");
        names.dedup();
        assert_eq!(names.len(), CHECK_TYPES.len(), "duplicate type name");
        for ty in CHECK_TYPES {
            assert!(!ty.doc.is_empty(), "{} has no doc", ty.name);
            for field in ty.fields {
                assert!(
                    COMMON_FIELDS.iter().all(|c| c.name != field.name),
                    "{} redefines common field {}",
                    ty.name,
                    field.name
                );
            }
        }
        let example = parse(include_str!("../../examples/checks.json")).unwrap();
        let mut used: Vec<_> = example.iter().map(|(_, c)| c.kind.type_name()).collect();
        used.sort_unstable();
        used.dedup();
        assert_eq!(used, sorted, "examples/checks.json must show every type");
    }
}
