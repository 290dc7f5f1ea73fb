import { getOrCreateDevSecret } from './auth/dev-secret.js';
import { TokenIssuer } from './auth/token-issuer.js';
import { ConfigError, loadConfig, type Config } from './config/env.js';
import { loadManifest } from './config/manifest.js';
import { createServer, type ParleyServer } from './index.js';
import { createLogger, type Logger } from './logger.js';

/** Process entry point: configuration, signals, exit codes. */
async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`parley: ${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const log = createLogger(config.logLevel);

  // The demo page signs in by name (/api/dev-token) only with the generated development secret.
  let devTokenIssuer: TokenIssuer | null = null;
  if (config.auth.alg === 'HS256' && !config.auth.secret) {
    const dev = getOrCreateDevSecret();
    config.auth.secret = dev.secret;
    if (!config.production) devTokenIssuer = new TokenIssuer({ secret: dev.secret });
    log.warn(
      { path: dev.path, created: dev.created },
      '*** DEVELOPMENT MODE: JWT_SECRET is not set; using a generated development secret. ' +
        'Anyone who can read that file can mint tokens. Set JWT_SECRET (and NODE_ENV=production) before deploying. ***',
    );
  }

  let server: ParleyServer;
  try {
    const manifest = await loadManifest(config.manifestPath);
    if (config.manifestPath)
      log.info({ path: config.manifestPath, channels: manifest.channels.length }, 'station manifest');
    server = await createServer({ config, manifest, log, processMetrics: true, devTokenIssuer });
    await server.listen();
  } catch (err) {
    if (err instanceof ConfigError) {
      log.fatal(err.message);
      process.stderr.write(`parley: ${err.message}\n`);
      process.exit(78);
    }
    log.fatal({ err }, 'start-up failed');
    process.exit(1);
  }

  installSignalHandlers(server, config, log);
}

function installSignalHandlers(server: ParleyServer, config: Config, log: Logger): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      log.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out; forcing exit');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    force.unref();
    server.shutdown().then(
      () => {
        log.info('shutdown complete');
        log.flush?.();
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception');
    process.exit(1);
  });
  process.on('unhandledRejection', (reason) => {
    log.fatal({ err: reason }, 'unhandled rejection');
    process.exit(1);
  });
}

void main();
