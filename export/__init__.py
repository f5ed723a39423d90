"""Export of the FOMM networks to ONNX (graphs, specs, manifest) and the identity of the fused warp op."""
