//! Enums stored as text: each is encoded with its `as_str` and decoded with
//! its `FromStr`, here at the store boundary only, so no code above the store
//! compares a kind, state or status as a string.

/// Makes `$t` (with `fn as_str(&self) -> &str` and `FromStr`) a text column.
macro_rules! text_enum {
    ($t:ty) => {
        impl sqlx::Type<sqlx::Any> for $t {
            fn type_info() -> sqlx::any::AnyTypeInfo {
                <str as sqlx::Type<sqlx::Any>>::type_info()
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Any> for $t {
            fn decode(
                value: <sqlx::Any as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&str as sqlx::Decode<sqlx::Any>>::decode(value)?;
                text.parse::<$t>()
                    .map_err(|e| format!("stored value {text:?}: {e}").into())
            }
        }

        impl<'q> sqlx::Encode<'q, sqlx::Any> for $t {
            fn encode_by_ref(
                &self,
                buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <String as sqlx::Encode<sqlx::Any>>::encode(self.as_str().to_string(), buf)
            }
        }
    };
}

text_enum!(crate::scoring::signal::SignalName);
text_enum!(crate::scoring::signal::SignalStatus);
text_enum!(crate::scoring::balance::EntryKind);
text_enum!(super::deliveries::DeliveryState);
text_enum!(super::digest_posts::PostState);
