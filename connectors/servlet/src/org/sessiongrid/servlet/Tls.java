package org.sessiongrid.servlet;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocketFactory;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;

/**
 * TLS to the grid's TLS ports ({@code grid=rediss://...}): the CA certificates to trust (PEM,
 * {@code tlsCaFile}; else the JVM's trust store) and, for a door that requires client
 * certificates, a PKCS#12 key store with this application's certificate and key
 * ({@code tlsKeyStore}, its password in {@code tlsKeyStorePasswordFile}).
 */
final class Tls {
    private Tls() {}

    static SSLSocketFactory socketFactory(String caFile, String keyStore, String keyStorePasswordFile)
            throws IOException, GeneralSecurityException {
        TrustManager[] trust = null;
        if (caFile != null) {
            KeyStore roots = KeyStore.getInstance(KeyStore.getDefaultType());
            roots.load(null, null);
            try (InputStream in = Files.newInputStream(Path.of(caFile))) {
                int i = 0;
                for (Certificate ca : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                    roots.setCertificateEntry("ca-" + i++, ca);
                }
                if (i == 0) {
                    throw new IOException("no certificate in tlsCaFile " + caFile);
                }
            }
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(roots);
            trust = tmf.getTrustManagers();
        }
        KeyManager[] keys = null;
        if (keyStore != null) {
            char[] password = keyStorePasswordFile == null
                    ? new char[0]
                    : Files.readString(Path.of(keyStorePasswordFile), StandardCharsets.UTF_8).strip().toCharArray();
            KeyStore mine = KeyStore.getInstance("PKCS12");
            try (InputStream in = Files.newInputStream(Path.of(keyStore))) {
                mine.load(in, password);
            }
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(mine, password);
            keys = kmf.getKeyManagers();
        }
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(keys, trust, null);
        return context.getSocketFactory();
    }
}
