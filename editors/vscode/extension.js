// The VS Code client for `unlearnspec lsp`: starts the server over stdio for `.unlearn` files.
// Everything the editor shows (diagnostics, hover, completion, formatting, quick fixes) comes from
// the server; this file only starts it. Install: `npm install` here, then `code --install-extension`
// of a `vsce package` build, or run it from this folder with F5 (see docs/editors.md).
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration("unlearnspec");
  const [command, ...args] = config.get("server.command", ["unlearnspec", "lsp"]);
  const rulesBaseUrl = config.get("rulesBaseUrl", "");
  const serverOptions = { command, args, transport: TransportKind.stdio };
  const clientOptions = {
    // an unsaved buffer is checked too: its paths lead from the workspace folder, where it will be saved
    documentSelector: [
      { scheme: "file", language: "unlearnspec" },
      { scheme: "untitled", language: "unlearnspec" },
    ],
    initializationOptions: rulesBaseUrl ? { rulesBaseUrl } : {},
    synchronize: {
      // data files next to a spec, `save_to_disk` folders and the specs a chain continues (`after
      // "file.unlearn#name"`) change what an open spec checks to
      fileEvents: [
        vscode.workspace.createFileSystemWatcher("**/*.{jsonl,csv,unlearn}"),
        vscode.workspace.createFileSystemWatcher("**/dataset_info.json"),
      ],
    },
  };
  client = new LanguageClient("unlearnspec", "unlearnspec", serverOptions, clientOptions);
  context.subscriptions.push({ dispose: () => client && client.stop() });
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
