//! Where a notification goes.

string_enum!(Channel { InApp => "in_app", Email => "email", Chat => "chat" });
