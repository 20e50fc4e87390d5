// wrangler (CompiledWasm rule) and vitest-pool-workers hand `.wasm` imports over
// as an already compiled module: workerd forbids compiling wasm from bytes.
declare module '*.wasm' {
  const module: WebAssembly.Module;
  export default module;
}
