// Typeset formulas with KaTeX, as strictly as a renderer would: read a JSON list of
// {"where": str, "tex": str, "display": bool} on stdin, print a JSON list of the failures
// ({"where", "tex", "error"}). Used by tests/test_formulas.py; KaTeX comes from the npm registry.
const katex = require(process.argv[2] || "katex");
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const failures = [];
  for (const item of JSON.parse(input)) {
    try {
      katex.renderToString(item.tex, { displayMode: item.display, throwOnError: true, strict: "ignore" });
    } catch (error) {
      failures.push({ where: item.where, tex: item.tex, error: String(error.message || error) });
    }
  }
  process.stdout.write(JSON.stringify(failures));
});
