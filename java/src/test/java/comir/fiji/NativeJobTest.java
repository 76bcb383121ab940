package comir.fiji;

import static org.junit.Assert.assertEquals;

import org.junit.Test;

/** The status line of long native jobs: percentage and the time left, extrapolated. */
public class NativeJobTest {
	@Test
	public void statusSaysHowLongIsLeft() {
		assertEquals("...", NativeJob.status(0, 10));
		assertEquals("...", NativeJob.status(0.5, 1));
		assertEquals(": 25%, about 30 s left", NativeJob.status(0.25, 10));
		assertEquals(": 10%, about 9 min left", NativeJob.status(0.1, 60));
		// 1000 training steps at 0.14 steps/s: 100 steps after 714 s leave about 1.8 h
		assertEquals(": 10%, about 1.8 h left", NativeJob.status(0.1, 714));
	}
}
