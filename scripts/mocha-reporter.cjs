// Mocha's spec reporter, plus a closing line in the plain form CI reads: "N passed, N failed".
const Mocha = require('mocha');

class SkeinReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once('end', () => {
      const { passes, failures, pending } = runner.stats;
      process.stdout.write(`\n${passes} passed, ${failures} failed${pending ? `, ${pending} skipped` : ''}\n`);
    });
  }
}

module.exports = SkeinReporter;
