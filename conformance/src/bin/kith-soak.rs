//! kith-soak: a bounded soak run against the reference node (issue 7). Work in progress.

fn main() {
    eprintln!("kith-soak: not implemented yet");
    std::process::exit(2);
}
