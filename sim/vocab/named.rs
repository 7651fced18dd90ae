//! `named_enum!`: an enum of names whose every variant has exactly one string form.
//!
//! Why a macro: a name that is both a Rust variant and a string (in scenario files,
//! result.json, the event log) has two spellings to keep in step. Declaring the variant and
//! its text on one line, and deriving `as_str`, `Display`, serde and the list of all names
//! from that line, leaves nothing to keep in step (ARCHITECTURE.md §10).

/// Declares `enum $name { $Variant = "text", … }` with: serde (de)serialization as the text,
/// `ALL` and `NAMES` (every variant and its text, in declaration order), `as_str`,
/// `from_name` and a `Display` that honours width and alignment (`{:<20}`).
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(serde::Serialize, serde::Deserialize)]
        $vis enum $name {
            $( $(#[$variant_meta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Every variant's string form, in declaration order (`NAMES[i]` is `ALL[i]`'s).
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The one string form: what files, reports and logs spell.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The variant spelt `text`, if any.
            pub fn from_name(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|variant| variant.as_str() == text)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}
