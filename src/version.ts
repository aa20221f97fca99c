/** The registry's version, from package.json (sent in X-Docker-Registry-Version). */
import fs from 'node:fs';

function findVersion(): string {
  // src/version.ts runs from src/ (tsx) or dist/src/ (built): look upwards for package.json.
  for (const rel of ['../package.json', '../../package.json']) {
    const url = new URL(rel, import.meta.url);
    if (fs.existsSync(url)) return (JSON.parse(fs.readFileSync(url, 'utf8')) as { version: string }).version;
  }
  return '0.0.0';
}

export const VERSION: string = findVersion();
