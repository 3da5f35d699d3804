//! Process definitions (DESIGN §3): the schema, defaults, parsing, validation, diffs.

pub mod bounded;
pub mod definition;
pub mod diff;
pub mod edit;
pub mod graph;
pub mod inputs;
pub mod overrides;
pub mod template;
pub mod time;
pub mod unresolved;
pub mod validate;

pub use definition::{ActivityDef, ActivityKind, Definition, InputDef, InputType, PhaseDef, VariableDef};
pub use validate::{validate, DefinitionError};
