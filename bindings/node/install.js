'use strict';
// npm install's own step for this package: make sure koffi can be found.
//
// Installed from the registry or a tarball, npm has put koffi where
// require() finds it, and this does nothing.  Installed from a folder
// outside the project (npm install ./bindings/node), npm only links the
// folder and installs none of its dependencies: then koffi is fetched into
// the folder's own node_modules.

const path = require('path');
const { execFileSync } = require('child_process');

function found() {
  try {
    require.resolve('koffi', { paths: [__dirname] });
    return true;
  } catch (e) {
    return false;
  }
}

if (!found() && !process.env.FLAGHOOK_NODE_INSTALLING) {
  const range = require('./package.json').dependencies.koffi;
  const args = ['install', '--prefix', __dirname, '--no-save', '--no-package-lock', '--no-audit', '--no-fund',
    `koffi@${range}`];
  const env = { ...process.env, FLAGHOOK_NODE_INSTALLING: '1' };
  const cli = process.env.npm_execpath;
  console.log(`flaghook: npm linked ${__dirname}; installing koffi@${range} there`);
  if (cli && /\.c?js$/.test(cli)) execFileSync(process.execPath, [cli, ...args], { stdio: 'inherit', env });
  else execFileSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', args, { stdio: 'inherit', env });
  if (!found()) {
    console.error(`flaghook: koffi is still missing; run npm install in ${path.resolve(__dirname)}`);
    process.exit(1);
  }
}
