// The MQTT broker credentials of `kt serve`: user name and password from config or environment, TLS files read once.
import { readFileSync } from 'node:fs';
import { InvalidInputError, errorMessage } from '../../core/errors.js';
import type { PublisherOptions } from '../../events/mqtt/publisher-options.js';
import type { ServerConfig } from '../config.js';

/** The publisher options that carry secrets or TLS material; fields not configured are left out. */
export type BrokerCredentials = Partial<Pick<PublisherOptions, 'username' | 'password' | 'ca' | 'cert' | 'key'>>;

/** A short description for the log: which credentials are in use, never their values. */
export interface BrokerCredentialsSummary {
  usernameSet: boolean;
  passwordSet: boolean;
  tls: 'none' | 'ca' | 'client-certificate' | 'ca+client-certificate';
}

type MqttCredentialConfig = Pick<ServerConfig, 'mqttUsername' | 'mqttPassword' | 'mqttCaFile' | 'mqttCertFile' | 'mqttKeyFile'>;

/**
 * KT_MQTT_USERNAME and KT_MQTT_PASSWORD override the config (a password is better kept out of config files); the
 * PEM files are read now, so a missing file fails the start with its name rather than every reconnect.
 */
export function brokerCredentials(cfg: MqttCredentialConfig, env: Readonly<Record<string, string | undefined>>): BrokerCredentials {
  const username = nonEmpty(env['KT_MQTT_USERNAME']) ?? nonEmpty(cfg.mqttUsername);
  const password = nonEmpty(env['KT_MQTT_PASSWORD']) ?? nonEmpty(cfg.mqttPassword);
  if ((cfg.mqttCertFile === '') !== (cfg.mqttKeyFile === ''))
    throw new InvalidInputError('mqttCertFile and mqttKeyFile go together: give both for mutual TLS with the broker, or neither');
  const out: BrokerCredentials = {};
  if (username !== undefined) out.username = username;
  if (password !== undefined) out.password = password;
  if (cfg.mqttCaFile !== '') out.ca = readPem(cfg.mqttCaFile, 'mqttCaFile');
  if (cfg.mqttCertFile !== '') out.cert = readPem(cfg.mqttCertFile, 'mqttCertFile');
  if (cfg.mqttKeyFile !== '') out.key = readPem(cfg.mqttKeyFile, 'mqttKeyFile');
  return out;
}

export function summariseCredentials(c: BrokerCredentials): BrokerCredentialsSummary {
  const ca = c.ca !== undefined;
  const client = c.cert !== undefined;
  return {
    usernameSet: c.username !== undefined,
    passwordSet: c.password !== undefined,
    tls: ca && client ? 'ca+client-certificate' : ca ? 'ca' : client ? 'client-certificate' : 'none',
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new InvalidInputError(`${what} ${path} cannot be read: ${errorMessage(e)}`);
  }
}
