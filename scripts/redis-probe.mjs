// Whether a Redis answers at host:port, by a raw PING (no client library needed before a build).
import net from 'node:net';

/** True when something at host:port answers a Redis PING (an auth error is an answer too). */
export function redisAnswers(host, port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(/^(\+PONG|-NOAUTH|-ERR)/.test(data.toString())));
  });
}
