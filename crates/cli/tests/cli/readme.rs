//! Guards the README against drifting from what runs: its tour of the tool is `docs/tour.sh`
//! (which CI runs as printed) line for line, and it starts with exactly the two set-up
//! commands, the demo and the tests.

use std::path::PathBuf;

fn repo_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The lines of the first ```sh block after `heading`.
fn sh_block<'a>(text: &'a str, heading: &str) -> Vec<&'a str> {
    let after = text.split_once(heading).unwrap_or_else(|| panic!("no {heading:?}")).1;
    let body = after.split_once("```sh\n").expect("a sh block").1;
    body.split_once("```").expect("the block's end").0.lines().collect()
}

#[test]
fn the_readme_tour_is_the_script_ci_runs() {
    let script = repo_file("docs/tour.sh");
    let tour: Vec<&str> = script
        .split_once("# tour:begin\n")
        .and_then(|(_, rest)| rest.split_once("# tour:end\n"))
        .expect("tour markers in docs/tour.sh")
        .0
        .lines()
        .collect();
    let readme = repo_file("README.md");
    assert_eq!(sh_block(&readme, "## The `annal` tool"), tour, "README's tour != docs/tour.sh");
    assert!(tour.iter().any(|l| l.starts_with("annal verify ")), "{tour:?}");
    let ci = repo_file(".ci/run");
    assert!(ci.contains("bash docs/tour.sh"), ".ci/run does not run the tour");
}

#[test]
fn the_readme_starts_with_the_two_set_up_commands() {
    let readme = repo_file("README.md");
    let block = sh_block(&readme, "# annal");
    let commands: Vec<&str> = block.iter().filter(|l| !l.trim().is_empty()).copied().collect();
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert!(commands[0].starts_with("cargo run --release -p annal-cli -- demo"), "{commands:?}");
    assert!(commands[1].starts_with("cargo test "), "{commands:?}");
}
