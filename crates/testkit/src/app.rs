//! placeholder until the app harness lands
