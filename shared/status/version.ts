/** The software version (package.json of the build), apart from the status module so that a function needing only the version does not load the status of every room. */
// Inlined by esbuild into the bundle (the image does not carry package.json).
import pkg from '../../package.json' with { type: 'json' };

declare const __CDC_RELEASE__: string | undefined;

export const softwareVersion: string = pkg.version;

/**
 * The release this build is: the version and the git commit it was built from ("0.1.0+98ae65f1c2d3"),
 * baked in at build (infra/build/build.mjs releaseName); run from the sources, "<version>+source".
 * Two releases with the same package.json version are told apart by it (docs/deploy.md "Upgrade").
 */
export const release: string = typeof __CDC_RELEASE__ !== 'undefined' ? __CDC_RELEASE__ : `${pkg.version}+source`;
