//! Every input of the HTTP API's fuzz corpus (`crates/doors/fuzz/corpus/http_api`), sent to a
//! node as the fuzz target sends it.

use sessiongrid_embedded::fuzzing::HttpApi;

#[test]
fn no_request_of_the_fuzz_corpus_gets_a_500() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../doors/fuzz/corpus/http_api");
    let api = HttpApi::start();
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus directory") {
        let data = std::fs::read(entry.expect("a corpus entry").path()).expect("a corpus file");
        api.send(&data);
        inputs += 1;
    }
    assert!(inputs >= 8, "only {inputs} inputs in {}", dir.display());
}

/// The fuzz target keeps one API for the whole run in a `static`.
#[test]
fn the_api_can_be_shared_by_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<HttpApi>();
}
