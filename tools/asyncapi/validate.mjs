// Parse an AsyncAPI document with the official parser and print its diagnostics as
// JSON: {"errors": n, "warnings": n, "diagnostics": [[severity, code, message, path]]}.
// Severity 0 is an error; the exit code is 1 when there are errors.
import { Parser, fromFile } from '@asyncapi/parser';

const { diagnostics } = await fromFile(new Parser(), process.argv[2]).parse();
const errors = diagnostics.filter((d) => d.severity === 0).length;
console.log(JSON.stringify({
  errors,
  warnings: diagnostics.length - errors,
  diagnostics: diagnostics.map((d) => [d.severity, d.code, d.message, d.path.join('/')]),
}));
process.exit(errors ? 1 : 0);
