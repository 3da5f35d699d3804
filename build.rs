fn main() {
    // Migrations are embedded at compile time; a new one must rebuild the binary.
    println!("cargo:rerun-if-changed=migrations");
}
