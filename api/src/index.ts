export * from './api-service';
export * from './app';
export * from './job-events';
export * from './job-submitter';
export * from './job-view';
