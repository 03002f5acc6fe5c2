// Client-support lint: every HTML file named on the command line is checked against the
// caniemail database (@jsx-email/doiuse-email) for the clients our readers use. Prints one JSON
// object: {"file": {"unsupported": [[feature, client], ...], "partial": [[feature, client], ...]}}.
import { readFileSync } from "node:fs";
import { doIUseEmail } from "@jsx-email/doiuse-email";

const CLIENTS = ["gmail.*", "outlook.*", "apple-mail.*", "yahoo.*", "samsung-email.*"];
const FINDING = /^`(.+)` is (?:not|only partially) supported by `(.+)`$/;

function pairs(messages) {
  const seen = new Map();
  for (const message of messages ?? []) {
    const match = FINDING.exec(message);
    const pair = match ? [match[1], match[2]] : [message, ""];
    seen.set(pair.join("\u0000"), pair);
  }
  return [...seen.values()].sort((a, b) => a.join(" ").localeCompare(b.join(" ")));
}

const report = {};
for (const file of process.argv.slice(2)) {
  const result = doIUseEmail(readFileSync(file, "utf8"), { emailClients: CLIENTS });
  report[file] = { unsupported: pairs(result.errors), partial: pairs(result.warnings) };
}
process.stdout.write(JSON.stringify(report, null, 1) + "\n");
