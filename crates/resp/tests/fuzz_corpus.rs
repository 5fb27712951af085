//! Every input of the decoder's fuzz corpus (`fuzz/corpus/resp_decode`), checked as the fuzz
//! target checks it.

#[test]
fn the_fuzz_corpus_decodes_the_same_in_any_chunks() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/resp_decode");
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus directory") {
        let data = std::fs::read(entry.expect("a corpus entry").path()).expect("a corpus file");
        sessiongrid_resp::fuzzing::decode_in_chunks(&data);
        inputs += 1;
    }
    assert!(inputs > 100, "only {inputs} inputs in {}", dir.display());
}
