// Validates the ArgoCD Application example against the Application schema that the
// @kubernetes-models/argo-cd package (npm) generated from ArgoCD's CRD, and proves the check
// bites by validating a broken copy. Run with NODE_PATH=.cache/deploy-node/node_modules.
//   node deploy/tests/argocd.mjs deploy/microshift/argocd/application.yaml
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(`${process.env.NODE_PATH}/`);
const YAML = require("yaml");
const { Application } = await import(
  `${process.env.NODE_PATH}/@kubernetes-models/argo-cd/argoproj.io/v1alpha1/Application.js`
);

function errors(doc) {
  try {
    new Application(doc).validate();
    return null;
  } catch (e) {
    return String(e.message || e).replace(/\s+/g, " ");
  }
}

const file = process.argv[2];
const doc = YAML.parse(readFileSync(file, "utf8"));
const problem = errors(doc);
if (problem) {
  console.error(`FAILED: ${file}: ${problem}`);
  process.exit(1);
}
if (doc.spec.destination.namespace !== "ai-for-edge" || !doc.spec.source.path.startsWith("deploy/microshift/overlays/")) {
  console.error(`FAILED: ${file} does not deploy an overlay of deploy/microshift into ai-for-edge`);
  process.exit(1);
}
const broken = structuredClone(doc);
delete broken.spec.destination;
if (!errors(broken)) {
  console.error("FAILED: an Application without spec.destination was accepted: the check is vacuous");
  process.exit(1);
}
console.log(`${file}: a valid argoproj.io/v1alpha1 Application (and a broken copy is refused)`);
