//! The facerec element as the launcher drives it: registering it, and setting element
//! properties without GStreamer's panics (a refused value is an error for its camera).
//!
//! Camera layer: GStreamer and the element only.

use anyhow::{Context, Result, bail};
use gst::prelude::*;

/// Registers the facerec element if GST_PLUGIN_PATH did not provide it: from then on the copy
/// linked into this binary is used.
pub fn ensure_facerec_plugin() -> Result<()> {
    if gst::ElementFactory::find("facerec").is_none() {
        gstfacerec::plugin_register_static().context("cannot register the facerec plugin")?;
    }
    Ok(())
}

/// `set_property` without the panic: an unknown property, a mistyped or out-of-range value is
/// an error for this camera, not a panic in its thread.
pub fn set(element: &gst::Element, name: &str, value: impl Into<gst::glib::Value>) -> Result<()> {
    set_value(element, name, value.into())
}

/// `set_property_from_str` without the panic (enums such as `provider` and `pattern`).
pub fn set_str(element: &gst::Element, name: &str, text: &str) -> Result<()> {
    let pspec = element
        .find_property(name)
        .with_context(|| format!("{} has no property {name}", element.name()))?;
    let value = gst::glib::Value::deserialize_with_pspec(text, &pspec)
        .map_err(|_| anyhow::anyhow!("{} refuses {name} = {text:?}", element.name()))?;
    set_value(element, name, value)
}

fn set_value(element: &gst::Element, name: &str, value: gst::glib::Value) -> Result<()> {
    let pspec = element
        .find_property(name)
        .with_context(|| format!("{} has no property {name}", element.name()))?;
    let numeric = value
        .get::<f32>()
        .map(f64::from)
        .or_else(|_| value.get::<f64>())
        .or_else(|_| value.get::<u32>().map(f64::from))
        .or_else(|_| value.get::<i32>().map(f64::from))
        .ok();
    let in_range = match (pspec_range(&pspec), numeric) {
        // NaN is refused too.
        (Some((min, max)), Some(v)) => (min..=max).contains(&v),
        _ => true,
    };
    if !value.type_().is_a(pspec.value_type()) || !in_range {
        bail!("{} refuses {name} = {value:?}", element.name());
    }
    element.set_property_from_value(name, &value);
    Ok(())
}

/// The bounds of a numeric `ParamSpec`, whatever its numeric type.
pub fn pspec_range(pspec: &gst::glib::ParamSpec) -> Option<(f64, f64)> {
    use gst::glib;
    if let Some(p) = pspec.downcast_ref::<glib::ParamSpecFloat>() {
        Some((p.minimum() as f64, p.maximum() as f64))
    } else if let Some(p) = pspec.downcast_ref::<glib::ParamSpecDouble>() {
        Some((p.minimum(), p.maximum()))
    } else if let Some(p) = pspec.downcast_ref::<glib::ParamSpecUInt>() {
        Some((p.minimum() as f64, p.maximum() as f64))
    } else if let Some(p) = pspec.downcast_ref::<glib::ParamSpecInt>() {
        Some((p.minimum() as f64, p.maximum() as f64))
    } else if let Some(p) = pspec.downcast_ref::<glib::ParamSpecUInt64>() {
        Some((p.minimum() as f64, p.maximum() as f64))
    } else {
        pspec
            .downcast_ref::<glib::ParamSpecInt64>()
            .map(|p| (p.minimum() as f64, p.maximum() as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refused value is an error naming the element and the value, never a panic in the
    /// camera thread (issue 8: `--detect-threshold=-5` used to panic here).
    #[test]
    fn property_sets_refuse_instead_of_panicking() {
        gst::init().unwrap();
        ensure_facerec_plugin().unwrap();
        let facerec = gst::ElementFactory::make("facerec")
            .name("facerec")
            .build()
            .unwrap();
        let err = |r: Result<()>| format!("{:#}", r.unwrap_err());
        assert_eq!(
            err(set(&facerec, "detect-threshold", -5f32)),
            "facerec refuses detect-threshold = (gfloat) -5.000000"
        );
        assert_eq!(
            err(set(&facerec, "match-threshold", f32::NAN)),
            "facerec refuses match-threshold = (gfloat) nan"
        );
        assert_eq!(
            err(set(&facerec, "detect-interval", 100_000u32)),
            "facerec refuses detect-interval = (guint) 100000"
        );
        assert_eq!(
            err(set(&facerec, "detect-interval", "5")),
            "facerec refuses detect-interval = (gchararray) \"5\""
        );
        assert_eq!(
            err(set(&facerec, "no-such", 1u32)),
            "facerec has no property no-such"
        );
        assert_eq!(
            err(set_str(&facerec, "provider", "gpu")),
            "facerec refuses provider = \"gpu\""
        );
        set(&facerec, "detect-threshold", 0.5f32).unwrap();
        set_str(&facerec, "provider", "cpu").unwrap();
        assert_eq!(facerec.property::<f32>("detect-threshold"), 0.5);
    }
}
