//! Every input of the peer-frame fuzz corpus (`fuzz/corpus/peer_msg`), fed to a node as the
//! fuzz target feeds it.

#[test]
fn no_frame_of_the_fuzz_corpus_ends_a_node() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/peer_msg");
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus directory") {
        let data = std::fs::read(entry.expect("a corpus entry").path()).expect("a corpus file");
        sessiongrid_simulations::fuzzing::peer_frames(&data);
        inputs += 1;
    }
    assert!(inputs > 100, "only {inputs} inputs in {}", dir.display());
}
