include!("../gst-facerec/core/build/assets.rs");

fn main() {
    emit_assets_cfg("..");
}
