package comir.fiji;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileOutputStream;
import java.io.InputStream;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

/** A missing or broken native library gives a message naming what was tried; nothing crashes. */
public class NativeLoadFailureTest {
	@Rule
	public TemporaryFolder tmp = new TemporaryFolder();

	/** Runs in a fresh JVM: tries to load and prints the message. */
	public static class Probe {
		public static void main(String[] args) {
			try {
				Native.ensureLoaded();
				System.out.println("loaded");
			}
			catch (ComirException e) {
				System.out.println(e.getMessage());
				System.exit(3);
			}
		}
	}

	private String[] probe(File library) throws Exception {
		String java = new File(System.getProperty("java.home"), "bin/java").getPath();
		Process p = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"), "-Dcomir.library=" + library.getPath(),
			Probe.class.getName()).redirectErrorStream(true).start();
		InputStream in = p.getInputStream();
		ByteArrayOutputStream out = new ByteArrayOutputStream();
		byte[] buf = new byte[4096];
		for (int n; (n = in.read(buf)) > 0;) out.write(buf, 0, n);
		return new String[] {String.valueOf(p.waitFor()), out.toString("UTF-8")};
	}

	@Test
	public void missingLibraryIsReportedWithItsPath() throws Exception {
		File missing = new File(tmp.getRoot(), "lib/linux64/libcomir.so");
		String[] r = probe(missing);
		assertEquals(r[1], "3", r[0]);
		assertTrue(r[1], r[1].contains("could not be loaded") && r[1].contains(missing.getPath()) && r[1].contains("no such file"));
	}

	@Test
	public void aFileThatIsNotALibraryIsReported() throws Exception {
		File bogus = tmp.newFile("libcomir.so");
		FileOutputStream out = new FileOutputStream(bogus);
		out.write("not a shared library".getBytes("UTF-8"));
		out.close();
		String[] r = probe(bogus);
		assertEquals(r[1], "3", r[0]);
		assertTrue(r[1], r[1].contains("could not be loaded") && r[1].contains(bogus.getPath()));
	}
}
